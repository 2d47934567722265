"""What every route shares: health checks, request ids, problem responses, logs, OpenAPI."""

from __future__ import annotations

import io
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from chute.adapters.memory import MemoryFileStore
from chute.application import ServiceUnavailable
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers

from tests.e2e.helpers import URL_JOB, assert_problem, create_job, log_lines

# -- health ----------------------------------------------------------------------------------


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_answers_ready(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


class BrokenStore(MemoryFileStore):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def check_writable(self) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error", [ServiceUnavailable("disk /secret/path gone"), OSError("/secret/path")]
)
async def test_readyz_answers_503_when_storage_cannot_be_written(
    container: Container, client: httpx.AsyncClient, error: Exception
) -> None:
    container.file_store.override(providers.Object(BrokenStore(error)))

    response = await client.get("/readyz")

    body = assert_problem(response, 503, "service-unavailable")
    assert "/secret/path" not in response.text
    assert body["instance"] == "/readyz"


# -- request ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("request_id", ["abc", "A-b_c.9", "x" * 128])
async def test_a_valid_request_id_is_reused(client: httpx.AsyncClient, request_id: str) -> None:
    ok = await client.get("/healthz", headers={"X-Request-ID": request_id})
    missing = await client.get(f"/api/v1/jobs/{uuid4()}", headers={"X-Request-ID": request_id})

    assert ok.headers["x-request-id"] == request_id
    assert missing.headers["x-request-id"] == request_id
    assert missing.json()["request_id"] == request_id


@pytest.mark.parametrize("request_id", ["", "x" * 129, "x" * 200, "with space", "a/b", "é"])
async def test_an_invalid_request_id_is_replaced(
    client: httpx.AsyncClient, request_id: str
) -> None:
    headers = {"X-Request-ID": request_id.encode("utf-8")}

    response = await client.get("/healthz", headers=headers)

    new_id = response.headers["x-request-id"]
    assert new_id != request_id
    assert UUID(hex=new_id)


async def test_every_response_carries_a_fresh_request_id(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/healthz"),
        await client.post("/api/v1/jobs", json=URL_JOB),
        await client.get("/nowhere"),
    ]

    request_ids = {response.headers["x-request-id"] for response in responses}
    assert len(request_ids) == 3


# -- problems --------------------------------------------------------------------------------


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")

    assert_problem(response, 404, "not-found")


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/jobs")

    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


class ExplodingEngine:
    """An engine whose reads fail the way a bug would, with secrets in the message."""

    async def get_job(self, job_id: UUID) -> Any:
        raise RuntimeError("SELECT * FROM jobs -- /var/lib/chute/secret.db")


async def test_unexpected_error_is_a_bare_500_problem(
    container: Container, client: httpx.AsyncClient
) -> None:
    container.engine.override(providers.Object(ExplodingEngine()))

    response = await client.get(f"/api/v1/jobs/{uuid4()}", headers={"X-Request-ID": "req-500"})

    body = assert_problem(response, 500, "internal-error")
    assert body["request_id"] == "req-500"
    for leak in ("Traceback", "SELECT", "secret", "RuntimeError", "/var/lib"):
        assert leak not in response.text


# -- logs ------------------------------------------------------------------------------------


async def test_log_lines_carry_the_request_id_and_the_engines_fields(
    client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    job = await create_job(client)
    log_lines(json_logs)

    await client.delete(f"/api/v1/jobs/{job['id']}", headers={"X-Request-ID": "req-log-1"})

    lines = log_lines(json_logs)
    cancelled = next(line for line in lines if line["event"] == "job.cancelled")
    request = next(line for line in lines if line["event"] == "http.request")
    assert cancelled["request_id"] == request["request_id"] == "req-log-1"
    assert cancelled["job_id"] == job["id"]
    assert (request["method"], request["path"], request["status"]) == (
        "DELETE", f"/api/v1/jobs/{job['id']}", 200,
    )  # fmt: skip
    assert isinstance(request["duration_ms"], float)
    assert all(line["timestamp"].endswith("Z") for line in lines)


async def test_bodies_and_headers_are_never_logged(
    container: Container, client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    headers = {"Authorization": "Bearer sekret-token"}
    body = URL_JOB | {"metadata": {"pw": "hunter2"}}
    await client.post("/api/v1/jobs", json=body, headers=headers)
    container.engine.override(providers.Object(ExplodingEngine()))
    await client.get(f"/api/v1/jobs/{uuid4()}", headers=headers)

    text = json_logs.getvalue()
    assert "hunter2" not in text and "sekret-token" not in text
    failure = next(line for line in log_lines(json_logs) if line["event"] == "http.unhandled_error")
    assert "RuntimeError" in failure["exception"]  # the log has what the body must not


# -- OpenAPI ---------------------------------------------------------------------------------


async def test_openapi_has_stable_operation_ids_and_problem_responses(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()

    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    assert set(operations) == {
        "create_job", "create_jobs", "list_jobs", "get_job", "cancel_job", "retry_job",
        "upload_files", "healthz", "readyz", "claim_jobs", "heartbeat_job", "complete_job",
        "complete_jobs", "fail_job", "list_job_events", "get_job_content", "list_queues",
        "get_queue", "update_queue", "cancel_jobs", "retry_jobs", "list_schedules",
        "get_schedule", "put_schedule", "delete_schedule", "stream_events", "create_webhook",
        "list_webhooks", "get_webhook", "update_webhook", "delete_webhook",
        "list_webhook_deliveries", "metrics", "release_job", "store_job_content",
        "redetect_job_content",
    }  # fmt: skip
    not_found = operations["get_job"]["responses"]["404"]["content"]
    assert list(not_found) == ["application/problem+json"]
    upload = operations["upload_files"]["requestBody"]["content"]["multipart/form-data"]
    form = spec["components"]["schemas"][upload["schema"]["$ref"].rpartition("/")[2]]
    assert form["properties"]["file"]["type"] == "array"
