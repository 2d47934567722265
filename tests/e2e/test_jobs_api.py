"""Creating, reading, cancelling and retrying jobs over HTTP, on memory and on SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from chute.adapters.system import ManualClock
from chute.application import OrchestrationEngine
from chute.domain import JobStatus
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers

from tests.e2e.helpers import JOB_FIELDS, TIME, URL_JOB, assert_problem, create_job, error_locs


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def count_jobs(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/v1/jobs")
    assert response.status_code == 200
    total: int = response.json()["total"]
    return total


async def make_status(engine: OrchestrationEngine, job_id: str, *path: JobStatus) -> None:
    for status in path:
        await engine.update_job_status(UUID(job_id), status)


# -- create ----------------------------------------------------------------------------------


async def test_create_job_answers_201_with_location_and_every_field(
    client: httpx.AsyncClient,
) -> None:
    body = URL_JOB | {
        "file_name": "report.pdf",
        "file_size": 48213,
        "mime_type": "Application/PDF",
        "priority": "high",
        "mode": "fast",
        "metadata": {"tenant": "acme", "tags": ["a", 1]},
        "max_attempts": 5,
    }
    response = await client.post("/api/v1/jobs", json=body)

    assert response.status_code == 201
    job = response.json()
    assert set(job) == JOB_FIELDS
    assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
    assert UUID(job["id"]).version == 7
    assert job | {"mime_type": "application/pdf"} == job
    assert {k: job[k] for k in body if k != "mime_type"} == {
        k: v for k, v in body.items() if k != "mime_type"
    }
    assert (job["status"], job["attempts"], job["last_error"], job["detection"]) == (
        "pending", 0, None, None,
    )  # fmt: skip
    assert TIME.match(job["created_at"]) and job["updated_at"] == job["created_at"]
    for field in ("worker_id", "lease_expires_at", "run_after", "started_at", "result"):
        assert job[field] is None


async def test_create_job_fills_the_defaults(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    assert (job["priority"], job["mode"], job["metadata"], job["max_attempts"]) == (
        "normal", "auto", {}, 3,
    )  # fmt: skip
    assert (job["file_name"], job["file_size"], job["mime_type"]) == (None, None, None)


async def test_times_always_carry_microseconds_and_z(
    container: Container, client: httpx.AsyncClient
) -> None:
    container.clock.override(providers.Object(ManualClock(datetime(2026, 11, 29, tzinfo=UTC))))

    job = await create_job(client)

    assert job["created_at"] == "2026-11-29T00:00:00.000000Z"
    got = await client.get(f"/api/v1/jobs/{job['id']}")
    assert got.json()["updated_at"] == "2026-11-29T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"source_uri": None}, ["body", "source_uri"]),
        ({"source_uri": "ftp://example.org/a.pdf"}, ["body", "source_uri"]),
        ({"source_uri": "https:///no-host"}, ["body", "source_uri"]),
        ({"source_uri": "https://user:pass@example.org/a"}, ["body", "source_uri"]),
        ({"source_uri": "https://example.org/" + "a" * 2030}, ["body", "source_uri"]),
        ({"source_uri": "example.org/a.pdf"}, ["body", "source_uri"]),
        ({"source_uri": "https://example.org/a b"}, ["body", "source_uri"]),
        ({"source_type": "s3", "source_uri": "s3://Bad_Bucket/key"}, ["body", "source_uri"]),
        ({"source_type": "s3", "source_uri": "s3://bucket"}, ["body", "source_uri"]),
        ({"source_type": "s3", "source_uri": "https://example.org/a"}, ["body", "source_uri"]),
        ({"source_type": "upload"}, ["body", "source_type"]),
        ({"source_type": "ftp"}, ["body", "source_type"]),
        ({"metadata": {"blob": "x" * (16 * 1024)}}, ["body", "metadata"]),
        ({"metadata": ["not", "an", "object"]}, ["body", "metadata"]),
        ({"max_attempts": 0}, ["body", "max_attempts"]),
        ({"max_attempts": 21}, ["body", "max_attempts"]),
        ({"max_attempts": "3"}, ["body", "max_attempts"]),
        ({"max_attempts": 2.5}, ["body", "max_attempts"]),
        ({"file_size": -1}, ["body", "file_size"]),
        ({"file_size": "12"}, ["body", "file_size"]),
        ({"mime_type": "pdf"}, ["body", "mime_type"]),
        ({"priority": "asap"}, ["body", "priority"]),
        ({"mode": "slow"}, ["body", "mode"]),
        ({"colour": "blue"}, ["body", "colour"]),
    ],
)
async def test_create_job_refuses_invalid_values(
    client: httpx.AsyncClient, change: dict[str, Any], loc: list[str]
) -> None:
    body = {k: v for k, v in (URL_JOB | change).items() if v is not None}

    response = await client.post("/api/v1/jobs", json=body)

    assert error_locs(response) == [loc]
    assert await count_jobs(client) == 0


async def test_create_job_reports_every_invalid_value_at_once(client: httpx.AsyncClient) -> None:
    body = {"source_type": "url", "source_uri": "ftp://x", "max_attempts": 0, "extra": 1}

    response = await client.post("/api/v1/jobs", json=body)

    assert sorted(map(str, error_locs(response))) == sorted(
        map(str, [["body", "source_uri"], ["body", "max_attempts"], ["body", "extra"]])
    )


@pytest.mark.parametrize(
    "metadata",
    [
        b'{"a": NaN}',
        b'{"a": [1, -Infinity]}',
        b'{"a":' * 65 + b"1" + b"}" * 65,  # deeper than any response could be encoded
        b'{"a":' * 600 + b"1" + b"}" * 600,
    ],
)
async def test_create_job_refuses_metadata_that_json_cannot_carry_back(
    client: httpx.AsyncClient, metadata: bytes
) -> None:
    body = b'{"source_type": "url", "source_uri": "https://a.example/b", "metadata": %s}'

    response = await client.post(
        "/api/v1/jobs", content=body % metadata, headers={"content-type": "application/json"}
    )

    assert error_locs(response) == [["body", "metadata"]]
    assert await count_jobs(client) == 0


@pytest.mark.parametrize("chunked", [False, True])
async def test_create_job_refuses_a_body_over_one_mebibyte(
    client: httpx.AsyncClient, chunked: bool
) -> None:
    body = json.dumps(URL_JOB | {"file_name": " " * (1024 * 1024)}).encode()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    content = chunks() if chunked else body
    headers = {"content-type": "application/json"}
    response = await client.post("/api/v1/jobs", content=content, headers=headers)

    assert_problem(response, 413, "payload-too-large")
    assert await count_jobs(client) == 0


@pytest.mark.parametrize(
    "content",
    [b'{"source_type": "url",', b"not json", b"\xff\xfe\x00{", b"", b"[]", b'"text"', b"null"],
)
async def test_create_job_refuses_a_body_that_is_not_a_json_object(
    client: httpx.AsyncClient, content: bytes
) -> None:
    headers = {"content-type": "application/json"}

    response = await client.post("/api/v1/jobs", content=content, headers=headers)

    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["loc"][0] == "body"
    assert "input" not in body["errors"][0]
    assert await count_jobs(client) == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
async def test_create_job_refuses_a_body_not_sent_as_json(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}

    response = await client.post("/api/v1/jobs", content=b'{"a": 1}', headers=headers)

    assert_problem(response, 415, "unsupported-media-type")


# -- idempotency -----------------------------------------------------------------------------


async def test_idempotency_key_replays_the_first_job_with_200(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)
    again = await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert await count_jobs(client) == 1


async def test_idempotency_replay_shows_the_job_as_it_is_now(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    job = (await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)).json()
    await client.delete(f"/api/v1/jobs/{job['id']}")

    again = await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)

    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


async def test_idempotency_key_with_another_body_is_refused(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)

    other = URL_JOB | {"priority": "high"}
    response = await client.post("/api/v1/jobs", json=other, headers=headers)

    assert_problem(response, 422, "idempotency-key-reused")
    assert await count_jobs(client) == 1


@pytest.mark.parametrize("key", [b"", b"x" * 256, "cl\xe9".encode("latin-1"), b"tab\there"])
async def test_idempotency_key_must_be_1_to_255_printable_ascii(
    client: httpx.AsyncClient, key: bytes
) -> None:
    response = await client.post("/api/v1/jobs", json=URL_JOB, headers={"Idempotency-Key": key})

    assert error_locs(response) == [["header", "Idempotency-Key"]]
    assert await count_jobs(client) == 0


async def test_idempotency_key_of_255_characters_with_spaces_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    key = ("a key ~!" * 40)[:255]

    response = await client.post("/api/v1/jobs", json=URL_JOB, headers={"Idempotency-Key": key})

    assert response.status_code == 201


async def test_idempotency_keys_are_scoped_to_their_endpoint(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "shared"}
    single = await client.post("/api/v1/jobs", json=URL_JOB, headers=headers)
    batch = await client.post("/api/v1/jobs/batch", json={"jobs": [URL_JOB]}, headers=headers)

    assert (single.status_code, batch.status_code) == (201, 201)
    assert batch.json()["jobs"][0]["id"] != single.json()["id"]


# -- batch -----------------------------------------------------------------------------------


def batch_of(count: int) -> dict[str, Any]:
    return {"jobs": [URL_JOB | {"source_uri": f"https://example.org/{i}"} for i in range(count)]}


async def test_batch_creates_every_job_in_request_order(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs/batch", json=batch_of(5))

    assert response.status_code == 201
    jobs = response.json()["jobs"]
    assert [job["source_uri"] for job in jobs] == [f"https://example.org/{i}" for i in range(5)]
    assert all(set(job) == JOB_FIELDS for job in jobs)
    assert await count_jobs(client) == 5


async def test_batch_with_one_invalid_item_creates_nothing(client: httpx.AsyncClient) -> None:
    body = batch_of(5)
    body["jobs"][3]["source_uri"] = "ftp://example.org/3"
    body["jobs"][4]["max_attempts"] = 99

    response = await client.post("/api/v1/jobs/batch", json=body)

    assert error_locs(response) == [
        ["body", "jobs", 3, "source_uri"],
        ["body", "jobs", 4, "max_attempts"],
    ]
    assert await count_jobs(client) == 0


@pytest.mark.parametrize("count", [0, 1001])
async def test_batch_holds_1_to_1000_jobs(client: httpx.AsyncClient, count: int) -> None:
    response = await client.post("/api/v1/jobs/batch", json=batch_of(count))

    assert error_locs(response) == [["body", "jobs"]]
    assert await count_jobs(client) == 0


async def test_batch_of_1000_jobs_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs/batch", json=batch_of(1000))

    assert response.status_code == 201
    assert len(response.json()["jobs"]) == 1000


async def test_batch_refuses_unknown_fields_and_a_missing_list(client: httpx.AsyncClient) -> None:
    extra = await client.post("/api/v1/jobs/batch", json=batch_of(1) | {"dry_run": True})
    missing = await client.post("/api/v1/jobs/batch", json={})

    assert error_locs(extra) == [["body", "dry_run"]]
    assert error_locs(missing) == [["body", "jobs"]]


async def test_batch_replay_answers_200_with_the_same_jobs(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "batch-1"}
    first = await client.post("/api/v1/jobs/batch", json=batch_of(3), headers=headers)
    again = await client.post("/api/v1/jobs/batch", json=batch_of(3), headers=headers)
    other = await client.post("/api/v1/jobs/batch", json=batch_of(2), headers=headers)

    assert (first.status_code, again.status_code) == (201, 200)
    assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
    assert_problem(other, 422, "idempotency-key-reused")


# -- get -------------------------------------------------------------------------------------


async def test_get_job_returns_the_job(client: httpx.AsyncClient) -> None:
    job = await create_job(client, metadata={"k": "v"})

    response = await client.get(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 200
    assert response.json() == job


async def test_get_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    job_id = uuid4()

    response = await client.get(f"/api/v1/jobs/{job_id}")

    body = assert_problem(response, 404, "job-not-found")
    assert str(job_id) in body["detail"]


@pytest.mark.parametrize("job_id", ["42", "not-a-uuid", "0193a4f2-7c1e-7d3a-9b1e"])
async def test_get_job_with_an_id_that_is_not_a_uuid_is_422(
    client: httpx.AsyncClient, job_id: str
) -> None:
    response = await client.get(f"/api/v1/jobs/{job_id}")

    assert error_locs(response) == [["path", "job_id"]]


# -- cancel ----------------------------------------------------------------------------------


async def test_cancel_pending_job_answers_200_cancelled(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    response = await client.delete(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert TIME.match(response.json()["finished_at"])
    kept = await client.get(f"/api/v1/jobs/{job['id']}")
    assert kept.json()["status"] == "cancelled"


async def test_cancel_running_job_answers_202_cancelling(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    job = await create_job(client)
    await make_status(engine, job["id"], JobStatus.RUNNING)

    response = await client.delete(f"/api/v1/jobs/{job['id']}")
    again = await client.delete(f"/api/v1/jobs/{job['id']}")

    assert (response.status_code, response.json()["status"]) == (202, "cancelling")
    assert (again.status_code, again.json()["status"]) == (200, "cancelling")


async def test_cancel_is_idempotent_on_a_cancelled_job(client: httpx.AsyncClient) -> None:
    job = await create_job(client)
    first = await client.delete(f"/api/v1/jobs/{job['id']}")

    again = await client.delete(f"/api/v1/jobs/{job['id']}")

    assert again.status_code == 200
    assert again.json() == first.json()


@pytest.mark.parametrize("final", [JobStatus.COMPLETED, JobStatus.FAILED])
async def test_cancel_refuses_a_finished_job(
    client: httpx.AsyncClient, engine: OrchestrationEngine, final: JobStatus
) -> None:
    job = await create_job(client)
    await make_status(engine, job["id"], JobStatus.RUNNING, final)

    response = await client.delete(f"/api/v1/jobs/{job['id']}")

    body = assert_problem(response, 409, "invalid-transition")
    assert str(final) in body["detail"]
    unchanged = await client.get(f"/api/v1/jobs/{job['id']}")
    assert unchanged.json()["status"] == final


async def test_cancel_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete(f"/api/v1/jobs/{uuid4()}"), 404, "job-not-found")


# -- retry -----------------------------------------------------------------------------------


async def test_retry_failed_job_queues_it_again(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    job = await create_job(client, max_attempts=1)
    await make_status(engine, job["id"], JobStatus.RUNNING, JobStatus.FAILED)

    response = await client.post(f"/api/v1/jobs/{job['id']}/retry")

    assert response.status_code == 200
    retried = response.json()
    assert (retried["status"], retried["run_after"], retried["finished_at"]) == (
        "pending", None, None,
    )  # fmt: skip
    assert retried["max_attempts"] >= retried["attempts"] + 1


async def test_retry_cancelled_job_queues_it_again(client: httpx.AsyncClient) -> None:
    job = await create_job(client)
    await client.delete(f"/api/v1/jobs/{job['id']}")

    response = await client.post(f"/api/v1/jobs/{job['id']}/retry")

    assert (response.status_code, response.json()["status"]) == (200, "pending")


async def test_retry_refuses_a_pending_job(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    response = await client.post(f"/api/v1/jobs/{job['id']}/retry")

    body = assert_problem(response, 409, "invalid-transition")
    assert "pending" in body["detail"]


async def test_retry_refuses_a_completed_job(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    job = await create_job(client)
    await make_status(engine, job["id"], JobStatus.RUNNING, JobStatus.COMPLETED)

    response = await client.post(f"/api/v1/jobs/{job['id']}/retry")

    assert_problem(response, 409, "invalid-transition")


async def test_retry_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/jobs/{uuid4()}/retry")

    assert_problem(response, 404, "job-not-found")
