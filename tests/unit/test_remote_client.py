"""The remote client's reading of answers, on httpx's mock transport: problems back to
the engine's errors, and Server-Sent Events back to stream items."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest
from chute.adapters.remote import RemoteEngine, RemoteError, problem_of
from chute.adapters.remote.stream import _Reader
from chute.application import FieldError, ServiceUnavailable, ValidationFailed
from chute.domain import InvalidTransition, JobStatus


def answering(status: int, body: object = None, text: str = "") -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handle)


async def test_field_errors_come_back_located_as_the_engine_locates_them() -> None:
    problem = {
        "type": "validation-error",
        "title": "Validation failed",
        "status": 422,
        "detail": "The request has 1 invalid value.",
        "errors": [{"loc": ["body", "jobs", 2, "source_uri"], "msg": "bad", "type": "value_error"}],
    }
    async with RemoteEngine("http://chute", transport=answering(422, problem)) as chute:
        with pytest.raises(ValidationFailed) as refused:
            await chute.create_jobs([])

    assert refused.value.errors == [FieldError((2, "source_uri"), "bad")]
    assert refused.value.title == "Validation failed"  # type: ignore[attr-defined]


async def test_an_invalid_transition_names_its_statuses() -> None:
    job_id = uuid4()
    detail = f"Job {job_id} is completed; it cannot become cancelled."
    problem = {"type": "invalid-transition", "title": "Invalid status transition", "status": 409,
               "detail": detail}  # fmt: skip
    async with RemoteEngine("http://chute", transport=answering(409, problem)) as chute:
        with pytest.raises(InvalidTransition) as refused:
            await chute.cancel_job(job_id)

    assert (refused.value.job_id, refused.value.current, refused.value.target) == (
        job_id, JobStatus.COMPLETED, JobStatus.CANCELLED,
    )  # fmt: skip
    assert str(refused.value) == detail


@pytest.mark.parametrize("status", [502, 503, 504])
async def test_a_proxy_with_no_server_behind_it_is_service_unavailable(status: int) -> None:
    async with RemoteEngine("http://chute", transport=answering(status, text="<h1>Bad</h1>")) as c:
        with pytest.raises(ServiceUnavailable) as refused:
            await c.get_job(uuid4())

    problem = problem_of(refused.value)
    assert problem is not None and problem.status == status


async def test_an_error_the_engine_has_no_class_for_is_a_remote_error() -> None:
    problem = {"type": "internal-error", "title": "Internal server error", "status": 500,
               "detail": "An unexpected error occurred.", "request_id": "r-1"}  # fmt: skip
    async with RemoteEngine("http://chute", transport=answering(500, problem)) as chute:
        with pytest.raises(RemoteError) as refused:
            await chute.list_queues()

    assert (refused.value.status, refused.value.title) == (500, "Internal server error")
    assert refused.value.problem.request_id == "r-1"


def test_sse_lines_make_items_and_keep_the_last_event_id() -> None:
    job_id = uuid4()
    reader = _Reader(last_event_id=None)
    lines = [
        "retry: 500",
        ": keep-alive",
        "",
        "event: progress",
        f'data: {{"job_id": "{job_id}", "progress": 5,',
        'data:  "progress_message": null, "at": "2026-12-01T10:00:00.000000Z"}',
        "",
        "id: 17",
        "event: other",
        "data: {}",
        "",
    ]

    items = [item for line in lines if (item := reader.line(line)) is not None]

    assert [(item.kind, item.progress) for item in items] == [("progress", 5)]
    assert (reader.last_event_id, reader.retry) == (17, 0.5)
