"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import httpx

URL_JOB: dict[str, Any] = {"source_type": "url", "source_uri": "https://example.org/report.pdf"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
JOB_FIELDS = {
    "id", "status", "source_type", "source_uri", "file_name", "file_size", "mime_type",
    "priority", "mode", "metadata", "attempts", "max_attempts", "last_error", "created_at",
    "updated_at", "detection", "worker_id", "lease_expires_at", "run_after", "started_at",
    "finished_at", "progress", "progress_message", "result", "queue", "schedule",
}  # fmt: skip

# Where the manual clock of the e2e apps starts (the conftest's `clock`).
CLOCK_START = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


async def create_job(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """Create a url job (with `fields` changed) and return it; fail unless 201."""
    response = await client.post("/api/v1/jobs", json=URL_JOB | fields)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def assert_problem(response: httpx.Response, status: int, type: str) -> dict[str, Any]:
    """Check that `response` is an RFC 9457 problem of this status and type; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == type
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    """The `loc` of every error of a 422 validation-error problem."""
    body = assert_problem(response, 422, "validation-error")
    return [error["loc"] for error in body["errors"]]


# -- workers ---------------------------------------------------------------------------------


def at(text: str) -> datetime:
    """The time of an API response, checked to be in the API's one format."""
    assert TIME.match(text), text
    return datetime.fromisoformat(text)


async def claim(client: httpx.AsyncClient, worker: str = "w1", **fields: Any) -> list[Any]:
    """Claim jobs as `worker` (with `fields` added to the body); fail unless 200."""
    response = await client.post("/api/v1/jobs/claim", json={"worker_id": worker} | fields)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"jobs"}
    jobs: list[Any] = response.json()["jobs"]
    return jobs


async def claim_one(client: httpx.AsyncClient, worker: str = "w1", **fields: Any) -> Any:
    jobs = await claim(client, worker, **fields)
    assert len(jobs) == 1
    return jobs[0]


async def report(
    client: httpx.AsyncClient, job_id: str, action: str, worker: str = "w1", **body: Any
) -> httpx.Response:
    """POST a worker's `action` (heartbeat, complete, fail) on a job."""
    return await client.post(f"/api/v1/jobs/{job_id}/{action}", json={"worker_id": worker} | body)


async def get(client: httpx.AsyncClient, job_id: str) -> Any:
    """The job as `GET /api/v1/jobs/{id}` shows it; fail unless 200."""
    response = await client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200
    return response.json()


class LogBuffer(io.StringIO):
    """A stream for chute's log handler (`json_logs`): a read first writes the lines that
    wait for the end of the event loop's round (`LineHandler`), as a reader of stderr
    would see them a moment later."""

    def getvalue(self) -> str:
        for handler in logging.getLogger().handlers:
            handler.flush()
        return super().getvalue()


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON lines logged into `buffer` (the `json_logs` fixture's) since last read."""
    lines = buffer.getvalue().splitlines()
    buffer.seek(0)
    buffer.truncate()
    return [json.loads(line) for line in lines]
