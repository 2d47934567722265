"""OpenTelemetry spans: requests, use cases, SQL statements and workers' jobs.

`OtelTracing` is built by the composition root only when OTEL_EXPORTER_OTLP_ENDPOINT is
set (off otherwise: no provider, no span, no cost). It keeps its own `TracerProvider`
rather than installing one globally, so that two apps in one process (or a test with
an in-memory exporter) trace apart. The OTLP exporter reads the standard OTEL_*
variables itself (endpoint, headers, timeout, compression).

A job carries the W3C `traceparent` of the span that created it (`trace_context`), and
the worker's span of the job takes it as its parent: the trace of a request goes on
through the worker that ran its job, in another process, possibly hours later.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from chute.domain import Job
from opentelemetry import context, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
TRACEPARENT = "traceparent"


def otlp_provider(service_name: str) -> TracerProvider:
    """A provider that batches spans to the OTLP/HTTP endpoint of the OTEL_* variables."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def provider_with(processor: SpanProcessor, service_name: str = "chute") -> TracerProvider:
    """A provider that hands its spans to `processor` (tests: an in-memory exporter's)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(processor)
    return provider


class OtelTracing:
    """Spans on one tracer provider."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("chute")

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Any:
        """A span, child of the current one; an exception that escapes marks it an error."""
        return self.tracer.start_as_current_span(name, attributes=attributes)

    def trace_context(self) -> str | None:
        """The `traceparent` of the current span, or None when there is none."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier.get(TRACEPARENT)

    @contextmanager
    def continued(
        self, traceparent: str | None, name: str, kind: SpanKind, attributes: Mapping[str, Any]
    ) -> Iterator[trace.Span]:
        """A span whose parent is the span `traceparent` names (a new trace without one)."""
        parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else None
        token = context.attach(parent) if parent is not None else None
        try:
            with self.tracer.start_as_current_span(name, kind=kind, attributes=attributes) as s:
                yield s
        finally:
            if token is not None:
                context.detach(token)

    def job_span(self, job: Job) -> AbstractContextManager[trace.Span]:
        attributes = {
            "chute.job.id": str(job.id),
            "chute.job.queue": job.queue,
            "chute.job.attempt": job.attempts,
            "chute.job.source_type": job.source_type.value,
        }
        return self.continued(job.trace_context, "chute.job", SpanKind.CONSUMER, attributes)

    def server_span(
        self, method: str, headers: Mapping[str, str]
    ) -> AbstractContextManager[trace.Span]:
        """The span of one HTTP request, continuing the caller's trace when it sent one."""
        traceparent = headers.get(TRACEPARENT)
        attributes = {"http.request.method": method}
        return self.continued(traceparent, method, SpanKind.SERVER, attributes)

    def instrument_sql(self, engine: Any) -> None:
        """A span for each SQL statement on `engine` (a sync `Engine`: an async engine's
        `sync_engine`), with this provider, not the global one: the instrumentation's
        own `EngineTracer`, since its instrumentor patches `create_engine` globally."""
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.metrics import NoOpMeterProvider

        usage = NoOpMeterProvider().get_meter("chute").create_up_down_counter("db.connections")
        EngineTracer(self.tracer, engine, usage)  # type: ignore[no-untyped-call]

    def shutdown(self) -> None:
        """Send what is batched, and stop."""
        self.provider.shutdown()


def mark_error(span: trace.Span, status: int) -> None:
    """A server error marks the request's span as failed (a 4xx is the client's)."""
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
