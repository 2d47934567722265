"""`POST /api/v1/jobs/complete`: many completions in one request, each refused alone."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest
from chute.adapters.system import ManualClock
from chute.entrypoints.bootstrap import engine_of
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, claim, claim_one, create_job, error_locs, get

pytestmark = pytest.mark.usefixtures("clock")
MIB = 1024 * 1024
PROBLEM_KEYS = {"type", "title", "status", "detail"}


async def complete(
    client: httpx.AsyncClient, jobs: list[dict[str, Any]], worker: str = "w1"
) -> httpx.Response:
    return await client.post("/api/v1/jobs/complete", json={"worker_id": worker, "jobs": jobs})


async def items(client: httpx.AsyncClient, jobs: list[dict[str, Any]]) -> list[Any]:
    response = await complete(client, jobs)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"items", "jobs"}
    assert response.json()["jobs"] == []  # none claimed without a `claim`
    found: list[Any] = response.json()["items"]
    assert len(found) == len(jobs)
    return found


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_complete_many_ends_each_job_with_its_result(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create_job(client)
    held = await claim(client, limit=3)
    jobs = [{"job_id": job["id"], "result": {"n": n}} for n, job in enumerate(held)]

    done = await items(client, jobs)

    assert [item["job"]["id"] for item in done] == [job["id"] for job in held]
    assert [item["job"]["result"] for item in done] == [{"n": 0}, {"n": 1}, {"n": 2}]
    for job in held:
        assert (await get(client, job["id"]))["status"] == "completed"


async def test_complete_many_answers_the_same_job_as_the_single_route(
    client: httpx.AsyncClient,
) -> None:
    await create_job(client)
    job = await claim_one(client)

    (item,) = await items(client, [{"job_id": job["id"], "result": {"pages": 3}}])

    assert item == {"job": await get(client, job["id"])}


async def test_complete_many_refuses_each_bad_item_alone(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    for _ in range(3):
        await create_job(client)
    good, other, invalid = await claim(client, limit=3)
    await create_job(client)
    not_ours = await claim_one(client, "w2")
    jobs = [
        {"job_id": good["id"], "result": {"ok": True}},
        {"job_id": str(uuid4())},
        {"job_id": not_ours["id"]},
        {"job_id": invalid["id"], "result": {"text": "a" * MIB}},
        {"job_id": other["id"], "result": None},
    ]

    found = await items(client, jobs)

    assert found[0]["job"]["status"] == found[4]["job"]["status"] == "completed"
    assert found[4]["job"]["result"] is None
    problems = [found[i]["problem"] for i in (1, 2, 3)]
    assert [(p["status"], p["type"]) for p in problems] == [
        (404, "job-not-found"), (409, "lease-not-held"), (422, "validation-error"),
    ]  # fmt: skip
    assert all(PROBLEM_KEYS <= set(p) for p in problems)
    assert [e["loc"] for e in problems[2]["errors"]] == [["body", "jobs", 3, "result"]]
    assert (await get(client, invalid["id"]))["status"] == "running"
    assert (await get(client, not_ours["id"]))["worker_id"] == "w2"


async def test_an_item_problem_is_the_single_routes_problem(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client, "w2")

    (item,) = await items(client, [{"job_id": job["id"]}])
    alone = await client.post(f"/api/v1/jobs/{job['id']}/complete", json={"worker_id": "w1"})

    single = assert_problem(alone, 409, "lease-not-held")
    assert item["problem"] == {key: single[key] for key in PROBLEM_KEYS}


async def test_a_job_named_twice_is_completed_once(client: httpx.AsyncClient) -> None:
    await create_job(client)
    job = await claim_one(client)

    first, second = await items(client, [{"job_id": job["id"], "result": {"n": 1}}] * 2)

    assert first["job"]["result"] == {"n": 1}
    assert second["problem"]["type"] == "lease-not-held"
    events = (await client.get(f"/api/v1/jobs/{job['id']}/events")).json()["items"]
    assert [e["to_status"] for e in events].count("completed") == 1


async def test_complete_many_with_a_claim_claims_the_next_jobs_in_the_same_call(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(5):
        await create_job(client)
    held = await claim(client, limit=2)
    body = {
        "worker_id": "w1",
        "jobs": [{"job_id": job["id"], "result": {"n": 1}} for job in held],
        "claim": {"limit": 2, "lease_seconds": 30, "queues": ["default"]},
    }

    response = await client.post("/api/v1/jobs/complete", json=body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert [item["job"]["status"] for item in answer["items"]] == ["completed"] * 2
    claimed = answer["jobs"]
    assert [(job["status"], job["worker_id"]) for job in claimed] == [("running", "w1")] * 2
    assert claimed == [await get(client, job["id"]) for job in claimed]
    assert not {job["id"] for job in claimed} & {job["id"] for job in held}
    body["claim"] = {"limit": 5}
    body["jobs"] = [{"job_id": job["id"]} for job in claimed]
    answer = (await client.post("/api/v1/jobs/complete", json=body)).json()
    assert len(answer["jobs"]) == 1  # all that was left


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4())}], "claim": {"limit": 0}},
         ["body", "claim", "limit"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4())}], "claim": {"lease_seconds": 1}},
         ["body", "claim", "lease_seconds"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4())}], "claim": {"worker_id": "w2"}},
         ["body", "claim", "worker_id"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4())}], "claim": []},
         ["body", "claim"]),
        ({"worker_id": "w1", "jobs": []}, ["body", "jobs"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4())}] * 101}, ["body", "jobs"]),
        ({"worker_id": "", "jobs": [{"job_id": str(uuid4())}]}, ["body", "worker_id"]),
        ({"worker_id": "w" * 256, "jobs": [{"job_id": str(uuid4())}]}, ["body", "worker_id"]),
        ({"worker_id": "w1"}, ["body", "jobs"]),
        ({"worker_id": "w1", "jobs": [{"job_id": "x"}]}, ["body", "jobs", 0, "job_id"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4()), "result": [1]}]},
         ["body", "jobs", 0, "result"]),
        ({"worker_id": "w1", "jobs": [{"job_id": str(uuid4()), "error": "x"}]},
         ["body", "jobs", 0, "error"]),
    ],
)  # fmt: skip
async def test_complete_many_refuses_a_malformed_request_whole(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    response = await client.post("/api/v1/jobs/complete", json=body)

    assert error_locs(response) == [loc]


async def test_complete_many_over_its_body_limit_is_413(client: httpx.AsyncClient) -> None:
    jobs = [{"job_id": str(uuid4()), "result": {"x": "x" * MIB}} for _ in range(17)]

    assert_problem(await complete(client, jobs), 413, "payload-too-large")


async def test_complete_many_is_not_a_job_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/jobs/complete")

    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "POST"


async def test_openapi_describes_complete_many(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()

    operation = spec["paths"]["/api/v1/jobs/complete"]["post"]
    assert operation["operationId"] == "complete_jobs"
    assert operation["x-max-body-bytes"] == 16 * MIB
    assert "application/problem+json" in operation["responses"]["422"]["content"]


async def test_an_unexpected_error_of_one_item_is_its_500_problem(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await create_job(client)
    job = await claim_one(client)
    engine = await engine_of(app.state.container)
    complete_jobs = engine.complete_jobs

    async def one_row_refused(worker_id: str, completions: Any) -> list[Any]:
        outcomes = await complete_jobs(worker_id, completions[:1])
        return [*outcomes, RuntimeError("a value the database refused")]

    monkeypatch.setattr(engine, "complete_jobs", one_row_refused)
    done, refused = await items(client, [{"job_id": job["id"]}, {"job_id": str(uuid4())}])

    assert done["job"]["status"] == "completed"
    assert refused["problem"]["status"] == 500
    assert refused["problem"]["type"] == "internal-error"
    assert "database" not in refused["problem"]["detail"]
