"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

import re
from typing import Any

import httpx

URL_JOB: dict[str, Any] = {"source_type": "url", "source_uri": "https://example.org/report.pdf"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
JOB_FIELDS = {
    "id", "status", "source_type", "source_uri", "file_name", "file_size", "mime_type",
    "priority", "mode", "metadata", "attempts", "max_attempts", "last_error", "created_at",
    "updated_at", "detection", "worker_id", "lease_expires_at", "run_after", "started_at",
    "finished_at", "progress", "progress_message", "result",
}  # fmt: skip


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
