"""OpenTelemetry spans, collected by the SDK's in-memory exporter: a request's span
continues its caller's trace, the use case's span is its child, and the span of the
worker that runs the job continues the same trace, from the traceparent stored with
the job. The app is driven through httpx's ASGI transport, the worker in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import httpx
import pytest
from chute.adapters.telemetry import OtelTracing
from chute.adapters.telemetry.otel import provider_with
from chute.application import OrchestrationEngine
from chute.application.worker import JobContext, Worker
from chute.domain import Job, JobStatus
from chute.entrypoints.bootstrap import Container, engine_of
from chute.entrypoints.http.app import create_app
from dependency_injector import providers
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.e2e.helpers import URL_JOB

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def exporter(container: Container) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    tracing = OtelTracing(provider_with(SimpleSpanProcessor(exporter)))
    container.tracing.override(providers.Object(tracing))
    return exporter


@pytest.fixture
async def traced(
    exporter: InMemorySpanExporter, container: Container
) -> AsyncIterator[tuple[httpx.AsyncClient, OrchestrationEngine]]:
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, await engine_of(container)


def one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [span for span in spans if span.name == name]
    assert len(found) == 1, [span.name for span in spans]
    return found[0]


async def test_the_workers_span_continues_the_trace_of_the_creating_request(
    traced: tuple[httpx.AsyncClient, OrchestrationEngine], exporter: InMemorySpanExporter
) -> None:
    client, engine = traced
    caller = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    created = await client.post("/api/v1/jobs", json=URL_JOB, headers=caller)
    assert created.status_code == 201, created.text
    assert "trace_context" not in created.json()  # kept with the job, never shown

    ran: list[str] = []

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        ran.append(str(job.id))
        return {"ok": True}

    worker = Worker(engine, process, worker_id="w1", poll_seconds=0.01)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(10):
            job_id = UUID(created.json()["id"])
            while (await engine.get_job(job_id)).status is not JobStatus.COMPLETED:
                await asyncio.sleep(0.01)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
    assert ran == [created.json()["id"]]

    spans = list(exporter.get_finished_spans())
    request = one(spans, "POST /api/v1/jobs")
    create = one(spans, "chute.create_job")
    job = one(spans, "chute.job")
    complete = one(spans, "chute.complete_and_claim")  # with the claim of its next jobs
    assert request.context is not None and request.parent is not None
    assert create.context is not None and create.parent is not None
    assert job.context is not None and job.parent is not None
    assert complete.parent is not None
    # The request continues its caller's trace; the use case is the request's child.
    assert format(request.context.trace_id, "032x") == CALLER_TRACE
    assert format(request.parent.span_id, "016x") == CALLER_SPAN
    assert create.parent.span_id == request.context.span_id
    assert request.attributes is not None and request.attributes["http.route"] == "/api/v1/jobs"
    # The worker's span is in the same trace, a child of the span that created the job;
    # what the worker reports is the job span's child.
    assert job.context.trace_id == request.context.trace_id
    assert job.parent.span_id == create.context.span_id
    assert job.attributes is not None and job.attributes["chute.job.id"] == ran[0]
    assert complete.parent.span_id == job.context.span_id
    assert complete.context is not None and complete.context.trace_id == job.context.trace_id


async def test_sql_statements_are_spans_of_the_use_case(
    traced: tuple[httpx.AsyncClient, OrchestrationEngine],
    exporter: InMemorySpanExporter,
    backend: str,
) -> None:
    client, _ = traced
    created = await client.post("/api/v1/jobs", json=URL_JOB)
    assert created.status_code == 201
    assert (await client.get(f"/api/v1/jobs/{created.json()['id']}")).status_code == 200
    spans = list(exporter.get_finished_spans())
    get = one(spans, "chute.get_job")
    assert get.context is not None
    statements = [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == get.context.span_id
    ]
    if backend == "memory":
        assert statements == []  # no SQL at all
    else:
        assert statements, [span.name for span in spans]
        assert any(span.name.startswith("SELECT") for span in statements), [
            span.name for span in statements
        ]
