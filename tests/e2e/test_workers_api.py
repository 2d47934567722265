"""Workers over HTTP: claim, heartbeat, complete and fail, on memory and on SQLite.

The app runs on a `ManualClock` and without its periodic rescuer, so that leases end
exactly when a test moves the clock, and nothing else moves the jobs meanwhile.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from chute.adapters.system import ManualClock

from tests.e2e.helpers import (
    CLOCK_START,
    JOB_FIELDS,
    assert_problem,
    at,
    claim,
    claim_one,
    create_job,
    error_locs,
    get,
    report,
)

START = CLOCK_START
# The app's clock is a manual one (the conftest's `clock`), set before the app starts.
pytestmark = pytest.mark.usefixtures("clock")
MIB = 1024 * 1024
# A job that no test creates: fixed, so that test ids are the same in every process.
NO_JOB = UUID("00000000-0000-7000-8000-000000000001")
REPORTS = {"heartbeat": {}, "complete": {"result": {"pages": 3}}, "fail": {"error": "boom"}}


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- claim -----------------------------------------------------------------------------------


async def test_claim_takes_the_highest_priority_first_then_the_oldest(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = {}
    for name, priority in [
        ("low", "low"), ("urgent-old", "urgent"), ("normal", "normal"),
        ("high", "high"), ("urgent-new", "urgent"),
    ]:  # fmt: skip
        ids[(await create_job(client, priority=priority))["id"]] = name
        clock.advance(1)

    jobs = await claim(client, limit=5)

    assert [ids[job["id"]] for job in jobs] == [
        "urgent-old", "urgent-new", "high", "normal", "low",
    ]  # fmt: skip


async def test_claim_hands_out_at_most_limit_jobs_and_each_only_once(
    client: httpx.AsyncClient,
) -> None:
    created = {(await create_job(client))["id"] for _ in range(3)}

    first = await claim(client, "w1", limit=2)
    second = await claim(client, "w2", limit=2)
    third = await claim(client, "w3", limit=100)

    assert (len(first), len(second), third) == (2, 1, [])
    assert {job["id"] for job in first + second} == created
    assert {job["worker_id"] for job in first} == {"w1"}


async def test_claim_with_nothing_due_answers_an_empty_list(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs/claim", json={"worker_id": "w1"})

    assert (response.status_code, response.json()) == (200, {"jobs": []})


async def test_a_claimed_job_is_running_under_the_workers_lease(
    client: httpx.AsyncClient,
) -> None:
    created = await create_job(client)

    job = await claim_one(client, "worker-7", lease_seconds=30)

    assert set(job) == JOB_FIELDS
    assert (job["id"], job["status"], job["attempts"], job["worker_id"]) == (
        created["id"], "running", 1, "worker-7",
    )  # fmt: skip
    assert at(job["lease_expires_at"]) == START + timedelta(seconds=30)
    assert at(job["started_at"]) == at(job["updated_at"]) == START
    assert (job["run_after"], job["finished_at"], job["progress"], job["result"]) == (
        None, None, None, None,
    )  # fmt: skip
    assert await get(client, job["id"]) == job


async def test_claim_uses_a_lease_of_60_seconds_by_default(client: httpx.AsyncClient) -> None:
    await create_job(client)

    job = await claim_one(client)

    assert at(job["lease_expires_at"]) == START + timedelta(seconds=60)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"mode": "fast"}, {"fast", "s3"}),
        ({"mode": ["fast"]}, {"fast", "s3"}),
        ({"mode": ["auto", "accurate"]}, {"auto", "accurate"}),
        ({"source_type": "s3"}, {"s3"}),
        ({"source_type": ["url"]}, {"auto", "fast", "accurate"}),
        ({"source_type": ["url", "s3"]}, {"auto", "fast", "accurate", "s3"}),
        ({"source_type": "url", "mode": "fast"}, {"fast"}),
        ({"mode": [], "source_type": []}, {"auto", "fast", "accurate", "s3"}),
        ({"source_type": "upload"}, set()),
    ],
)
async def test_claim_filters_by_mode_and_source_type(
    client: httpx.AsyncClient, filters: dict[str, Any], expected: set[str]
) -> None:
    for mode in ("auto", "fast", "accurate"):
        await create_job(client, mode=mode, metadata={"name": mode})
    s3 = {"source_type": "s3", "source_uri": "s3://bucket/key", "mode": "fast"}
    await create_job(client, **s3, metadata={"name": "s3"})

    jobs = await claim(client, limit=10, **filters)

    assert {job["metadata"]["name"] for job in jobs} == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("image/png", {"image/png"}),
        ("IMAGE/PNG", {"image/png"}),
        ("image/*", {"image/png", "image/jpeg"}),
        ("application/pdf", {"application/pdf"}),
        ("text/*", set()),
    ],
)
async def test_claim_filters_by_exact_mime_type_or_by_a_type_pattern(
    client: httpx.AsyncClient, pattern: str, expected: set[str]
) -> None:
    for mime_type in ("image/png", "image/jpeg", "application/pdf", "imagex/png", None):
        await create_job(client, mime_type=mime_type)

    jobs = await claim(client, limit=10, mime_type=pattern)

    assert {job["mime_type"] for job in jobs} == expected


# -- heartbeat -------------------------------------------------------------------------------


async def test_heartbeat_extends_the_lease_and_records_progress(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create_job(client)
    job = await claim_one(client, lease_seconds=30)
    clock.advance(20)

    beat = await report(client, job["id"], "heartbeat", progress=40, progress_message="half")

    assert beat.status_code == 200
    body = beat.json()
    assert at(body["lease_expires_at"]) == START + timedelta(seconds=50)  # by the claimed 30
    assert (body["status"], body["progress"], body["progress_message"]) == ("running", 40, "half")
    assert await get(client, job["id"]) == body


async def test_heartbeat_may_set_another_lease_length_and_keeps_progress_it_is_not_given(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create_job(client)
    job = await claim_one(client, lease_seconds=30)
    await report(client, job["id"], "heartbeat", progress=10, progress_message="start")
    clock.advance(25)

    body = (await report(client, job["id"], "heartbeat", lease_seconds=300)).json()

    assert at(body["lease_expires_at"]) == START + timedelta(seconds=325)
    assert (body["progress"], body["progress_message"]) == (10, "start")


async def test_a_cancel_reaches_the_worker_at_its_next_heartbeat(
    client: httpx.AsyncClient,
) -> None:
    await create_job(client)
    job = await claim_one(client)
    assert (await client.delete(f"/api/v1/jobs/{job['id']}")).status_code == 202

    beat = await report(client, job["id"], "heartbeat", progress=90)

    assert beat.status_code == 200
    assert (beat.json()["status"], beat.json()["worker_id"]) == ("cancelling", "w1")


# -- complete --------------------------------------------------------------------------------


async def test_complete_ends_the_job_with_its_result(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create_job(client)
    job = await claim_one(client)
    clock.advance(7)

    done = await report(client, job["id"], "complete", result={"pages": 3, "text": "é"})

    assert done.status_code == 200
    body = done.json()
    assert (body["status"], body["result"], body["attempts"]) == (
        "completed", {"pages": 3, "text": "é"}, 1,
    )  # fmt: skip
    assert at(body["finished_at"]) == START + timedelta(seconds=7)
    assert (body["worker_id"], body["lease_expires_at"]) == (None, None)
    assert await get(client, job["id"]) == body


async def test_complete_without_a_result_leaves_it_null(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)

    done = await report(client, job["id"], "complete")

    assert (done.status_code, done.json()["status"], done.json()["result"]) == (
        200, "completed", None,
    )  # fmt: skip


async def test_complete_after_a_cancel_keeps_the_work_done(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)
    await client.delete(f"/api/v1/jobs/{job['id']}")

    done = await report(client, job["id"], "complete", result={"ok": True})

    assert (done.status_code, done.json()["status"], done.json()["result"]) == (
        200, "completed", {"ok": True},
    )  # fmt: skip


async def test_a_result_of_exactly_1_mib_is_kept(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)
    result = {"text": "a" * (MIB - len('{"text":""}'))}

    done = await report(client, job["id"], "complete", result=result)

    assert done.status_code == 200, done.text[:500]
    assert (await get(client, job["id"]))["result"] == result


# -- fail ------------------------------------------------------------------------------------


async def test_fail_with_attempts_left_queues_the_job_again_after_a_backoff(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create_job(client)
    job = await claim_one(client)

    failed = await report(client, job["id"], "fail", error="timeout")

    body = failed.json()
    assert (failed.status_code, body["status"], body["last_error"], body["worker_id"]) == (
        200, "pending", "timeout", None,
    )  # fmt: skip
    # First attempt: uniform(0.5, 1) x min(600, 1 x 2^0) seconds.
    wait = at(body["run_after"]) - START
    assert timedelta(seconds=0.5) <= wait <= timedelta(seconds=1)
    assert await claim(client) == []  # not due yet
    clock.advance(1)
    again = await claim_one(client, "w2")
    assert (again["id"], again["attempts"], again["run_after"]) == (job["id"], 2, None)
    assert again["last_error"] == "timeout"


async def test_fail_not_retryable_fails_the_job_for_good(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)

    failed = await report(client, job["id"], "fail", error="corrupt file", retryable=False)

    body = failed.json()
    assert (failed.status_code, body["status"], body["last_error"]) == (
        200, "failed", "corrupt file",
    )  # fmt: skip
    assert at(body["finished_at"]) == START
    assert body["run_after"] is None


async def test_fail_of_the_last_attempt_fails_the_job_for_good(
    client: httpx.AsyncClient,
) -> None:
    await create_job(client, max_attempts=1)
    job = await claim_one(client)

    failed = await report(client, job["id"], "fail", error="boom", retryable=True)

    assert (failed.json()["status"], failed.json()["attempts"]) == ("failed", 1)


async def test_fail_after_a_cancel_ends_the_job_cancelled(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)
    await client.delete(f"/api/v1/jobs/{job['id']}")

    failed = await report(client, job["id"], "fail", error="stopped")

    assert (failed.json()["status"], failed.json()["last_error"]) == ("cancelled", "stopped")


# -- refusals: only the holder of a live lease may report --------------------------------------


@pytest.mark.parametrize("action", REPORTS)
async def test_a_report_from_another_worker_is_refused(
    client: httpx.AsyncClient, action: str
) -> None:
    await create_job(client)
    job = await claim_one(client, "w1")

    response = await report(client, job["id"], action, "w2", **REPORTS[action])

    body = assert_problem(response, 409, "lease-not-held")
    assert "w2" in body["detail"]
    assert await get(client, job["id"]) == job


@pytest.mark.parametrize("action", REPORTS)
@pytest.mark.parametrize("state", ["never claimed", "completed", "failed", "cancelled"])
async def test_a_report_on_a_job_not_held_is_refused(
    client: httpx.AsyncClient, action: str, state: str
) -> None:
    job = await create_job(client)
    if state != "never claimed":
        await claim_one(client, "w1")
        if state == "cancelled":
            await client.delete(f"/api/v1/jobs/{job['id']}")
        ending = {
            "completed": ("complete", {}),
            "failed": ("fail", {"error": "x", "retryable": False}),
        }
        verb, body = ending.get(state, ("fail", {"error": "x"}))
        assert (await report(client, job["id"], verb, **body)).status_code == 200
    before = await get(client, job["id"])

    response = await report(client, job["id"], action, "w1", **REPORTS[action])

    assert_problem(response, 409, "lease-not-held")
    assert await get(client, job["id"]) == before


@pytest.mark.parametrize("action", REPORTS)
@pytest.mark.parametrize("late", [0, 1, 3600])
async def test_a_report_after_the_lease_ended_is_refused_even_before_a_rescue(
    client: httpx.AsyncClient, clock: ManualClock, action: str, late: float
) -> None:
    await create_job(client)
    job = await claim_one(client, lease_seconds=5)
    clock.advance(5 + late)

    response = await report(client, job["id"], action, **REPORTS[action])

    assert_problem(response, 409, "lease-not-held")
    assert (await get(client, job["id"]))["status"] == "running"  # no rescue has run


async def test_a_heartbeat_just_before_the_lease_ends_keeps_it(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await create_job(client)
    job = await claim_one(client, lease_seconds=5)
    clock.advance(4.999)

    assert (await report(client, job["id"], "heartbeat")).status_code == 200
    clock.advance(4.999)
    assert (await report(client, job["id"], "complete")).status_code == 200


# -- bad requests ----------------------------------------------------------------------------

LONG_ID = "w" * 256


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"worker_id": ""}, ["body", "worker_id"]),
        ({"worker_id": LONG_ID}, ["body", "worker_id"]),
        ({"worker_id": 7}, ["body", "worker_id"]),
        ({"limit": 0}, ["body", "limit"]),
        ({"limit": 101}, ["body", "limit"]),
        ({"limit": "2"}, ["body", "limit"]),
        ({"limit": True}, ["body", "limit"]),
        ({"limit": 1.5}, ["body", "limit"]),
        ({"lease_seconds": 4}, ["body", "lease_seconds"]),
        ({"lease_seconds": 3601}, ["body", "lease_seconds"]),
        ({"lease_seconds": None}, ["body", "lease_seconds"]),
        ({"mode": "bogus"}, ["body", "mode"]),
        ({"mode": ["fast", "bogus"]}, ["body", "mode", 1]),
        ({"mode": {"fast": 1}}, ["body", "mode"]),
        ({"source_type": "ftp"}, ["body", "source_type"]),
        ({"source_type": ["url", "ftp"]}, ["body", "source_type", 1]),
        ({"mime_type": "image"}, ["body", "mime_type"]),
        ({"mime_type": "*/*"}, ["body", "mime_type"]),
        ({"mime_type": "image/png; q=1"}, ["body", "mime_type"]),
        ({"status": "pending"}, ["body", "status"]),
    ],
)
async def test_a_bad_claim_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    await create_job(client)

    response = await client.post("/api/v1/jobs/claim", json={"worker_id": "w1"} | body)

    assert error_locs(response) == [loc]
    assert (await claim(client, limit=10)) != []  # nothing was claimed


async def test_a_claim_without_a_worker_id_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/jobs/claim", json={"limit": 1})

    body = assert_problem(response, 422, "validation-error")
    assert [(e["loc"], e["type"]) for e in body["errors"]] == [(["body", "worker_id"], "missing")]


@pytest.mark.parametrize(
    ("action", "body", "loc"),
    [
        ("heartbeat", {"worker_id": ""}, ["body", "worker_id"]),
        ("heartbeat", {"worker_id": LONG_ID}, ["body", "worker_id"]),
        ("heartbeat", {"progress": -1}, ["body", "progress"]),
        ("heartbeat", {"progress": 101}, ["body", "progress"]),
        ("heartbeat", {"progress": "50"}, ["body", "progress"]),
        ("heartbeat", {"lease_seconds": 4}, ["body", "lease_seconds"]),
        ("heartbeat", {"lease_seconds": 3601}, ["body", "lease_seconds"]),
        ("heartbeat", {"progress_message": 5}, ["body", "progress_message"]),
        ("heartbeat", {"note": "x"}, ["body", "note"]),
        ("complete", {"worker_id": ""}, ["body", "worker_id"]),
        ("complete", {"result": [1, 2]}, ["body", "result"]),
        ("complete", {"result": "done"}, ["body", "result"]),
        ("complete", {"result": 1}, ["body", "result"]),
        ("complete", {"result": {"text": "a" * MIB}}, ["body", "result"]),
        ("complete", {"error": "x"}, ["body", "error"]),
        ("fail", {}, ["body", "error"]),
        ("fail", {"worker_id": LONG_ID, "error": "x"}, ["body", "worker_id"]),
        ("fail", {"error": "x" * 8193}, ["body", "error"]),
        ("fail", {"error": "é" * 4097}, ["body", "error"]),  # 8194 bytes of UTF-8
        ("fail", {"error": None}, ["body", "error"]),
        ("fail", {"error": "x", "retryable": "yes"}, ["body", "retryable"]),
        ("fail", {"error": "x", "retryable": 1}, ["body", "retryable"]),
        ("fail", {"error": "x", "result": {}}, ["body", "result"]),
    ],
)
async def test_a_bad_report_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, action: str, body: dict[str, Any], loc: list[str | int]
) -> None:
    await create_job(client)
    job = await claim_one(client)

    response = await client.post(
        f"/api/v1/jobs/{job['id']}/{action}", json={"worker_id": "w1"} | body
    )

    assert error_locs(response) == [loc]
    assert await get(client, job["id"]) == job


async def test_several_bad_values_are_reported_together(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/jobs/claim", json={"worker_id": "", "limit": 0, "lease_seconds": 4}
    )

    assert sorted(map(str, error_locs(response))) == sorted(
        str(["body", field]) for field in ("worker_id", "limit", "lease_seconds")
    )


async def test_an_error_of_exactly_8192_bytes_is_kept(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)
    error = "é" * 4096

    failed = await report(client, job["id"], "fail", error=error)

    assert (failed.status_code, failed.json()["last_error"]) == (200, error)


async def test_a_result_with_nan_is_refused(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)

    response = await client.post(
        f"/api/v1/jobs/{job['id']}/complete",
        content=b'{"worker_id": "w1", "result": {"score": NaN}}',
        headers={"content-type": "application/json"},
    )

    assert error_locs(response) == [["body", "result"]]


@pytest.mark.parametrize(
    "path", ["claim", f"{NO_JOB}/heartbeat", f"{NO_JOB}/complete", f"{NO_JOB}/fail"]
)
async def test_a_worker_body_that_is_not_json_is_415(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(f"/api/v1/jobs/{path}", data={"worker_id": "w1"})

    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("claim", {"worker_id": "w" * (64 * 1024)}),
        (f"{NO_JOB}/heartbeat", {"worker_id": "w1", "progress_message": "x" * (64 * 1024)}),
        (f"{NO_JOB}/fail", {"worker_id": "w1", "error": "x" * (64 * 1024)}),
        (f"{NO_JOB}/complete", {"worker_id": "w1", "result": {"x": "x" * (8 * MIB)}}),
    ],
)
async def test_a_worker_body_over_its_limit_is_413(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
) -> None:
    response = await client.post(f"/api/v1/jobs/{path}", json=body)

    assert_problem(response, 413, "payload-too-large")


WORKER_ROUTES = [
    ("POST", "heartbeat", {"worker_id": "w1"}),
    ("POST", "complete", {"worker_id": "w1"}),
    ("POST", "fail", {"worker_id": "w1", "error": "x"}),
    ("GET", "events", None),
    ("GET", "content", None),
]


@pytest.mark.parametrize(("method", "action", "body"), WORKER_ROUTES)
async def test_every_worker_route_answers_404_for_an_unknown_job(
    client: httpx.AsyncClient, method: str, action: str, body: dict[str, Any] | None
) -> None:
    response = await client.request(method, f"/api/v1/jobs/{uuid4()}/{action}", json=body)

    assert_problem(response, 404, "job-not-found")


@pytest.mark.parametrize(("method", "action", "body"), WORKER_ROUTES)
@pytest.mark.parametrize("job_id", ["not-a-uuid", "claim", "1234"])
async def test_every_worker_route_answers_422_for_an_id_that_is_not_a_uuid(
    client: httpx.AsyncClient,
    method: str,
    action: str,
    body: dict[str, Any] | None,
    job_id: str,
) -> None:
    response = await client.request(method, f"/api/v1/jobs/{job_id}/{action}", json=body)

    assert error_locs(response) == [["path", "job_id"]]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_other_methods_on_claim_are_405_not_a_job_id(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/api/v1/jobs/claim")

    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"


async def test_put_on_claim_is_405_allowing_post(client: httpx.AsyncClient) -> None:
    response = await client.put("/api/v1/jobs/claim", json={"worker_id": "w1"})

    assert_problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_openapi_describes_the_worker_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    operations = {op["operationId"]: op for path in spec["paths"].values() for op in path.values()}
    for name in ("claim_jobs", "heartbeat_job", "complete_job", "fail_job"):
        assert "application/problem+json" in operations[name]["responses"]["422"]["content"]
    for name in ("heartbeat_job", "complete_job", "fail_job"):
        assert "lease-not-held" in operations[name]["responses"]["409"]["description"]
    assert operations["complete_job"]["x-max-body-bytes"] == 8 * MIB
    assert "content-not-found" in operations["get_job_content"]["responses"]["404"]["description"]
    assert spec["paths"]["/api/v1/jobs/claim"].keys() == {"post"}
