"""Cancelling and retrying many jobs over HTTP, on memory and on SQLite."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from chute.application import OrchestrationEngine
from chute.domain import JobStatus

from tests.e2e.helpers import assert_problem, create_job, error_locs

S = JobStatus


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def job_in(
    client: httpx.AsyncClient, engine: OrchestrationEngine, *path: S, **fields: Any
) -> str:
    job = await create_job(client, **fields)
    for status in path:
        await engine.update_job_status(UUID(job["id"]), status)
    return str(job["id"])


async def status_of(client: httpx.AsyncClient, job_id: str) -> str:
    return str((await client.get(f"/api/v1/jobs/{job_id}")).json()["status"])


async def bulk(client: httpx.AsyncClient, action: str, body: Any) -> dict[str, Any]:
    response = await client.post(f"/api/v1/jobs/{action}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_cancel_by_ids_counts_changed_unchanged_and_unknown_jobs(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    pending = await job_in(client, engine)
    running = await job_in(client, engine, S.RUNNING)
    done = await job_in(client, engine, S.RUNNING, S.COMPLETED)

    answer = await bulk(client, "cancel", {"ids": [pending, running, done, str(uuid4())]})

    assert answer == {"matched": 3, "changed": 2, "unchanged": 2, "more": False}
    assert [await status_of(client, i) for i in (pending, running, done)] == [
        "cancelled", "cancelling", "completed",
    ]  # fmt: skip
    events = (await client.get(f"/api/v1/jobs/{pending}/events")).json()["items"]
    assert (events[-1]["from_status"], events[-1]["to_status"], events[-1]["actor"]) == (
        "pending", "cancelled", "client",
    )  # fmt: skip


async def test_retry_by_filter_walks_a_large_set_in_calls_of_limit(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    failed = [
        await job_in(client, engine, S.RUNNING, S.FAILED, metadata={"tenant": "acme", "n": i})
        for i in range(5)
    ]
    other = await job_in(client, engine, S.RUNNING, S.FAILED, metadata={"tenant": "globex"})
    body = {"filter": {"status": ["failed"], "metadata": {"tenant": "acme"}}, "limit": 2}

    answers = [await bulk(client, "retry", body)]
    while answers[-1]["more"]:
        answers.append(await bulk(client, "retry", body))

    assert [(a["matched"], a["changed"], a["more"]) for a in answers] == [
        (2, 2, True), (2, 2, True), (1, 1, False),
    ]  # fmt: skip
    assert {await status_of(client, i) for i in failed} == {"pending"}
    assert await status_of(client, other) == "failed"


async def test_a_filter_metadata_number_matches_the_number_and_its_text(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    seven = await job_in(client, engine, metadata={"batch": 7})
    text = await job_in(client, engine, metadata={"batch": "7"})
    eight = await job_in(client, engine, metadata={"batch": 8})

    answer = await bulk(client, "cancel", {"filter": {"metadata": {"batch": 7}}})

    assert answer == {"matched": 2, "changed": 2, "unchanged": 0, "more": False}
    assert [await status_of(client, i) for i in (seven, text, eight)] == [
        "cancelled", "cancelled", "pending",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body"]),
        ({"ids": []}, ["body", "ids"]),
        ({"ids": [str(uuid4()) for _ in range(1001)]}, ["body", "ids"]),
        ({"ids": ["nope"]}, ["body", "ids", 0]),
        ({"ids": [str(uuid4())], "filter": {}}, ["body"]),
        ({"ids": [str(uuid4())], "limit": 5}, ["body"]),
        ({"filter": {}, "limit": 0}, ["body", "limit"]),
        ({"filter": {}, "limit": 10_001}, ["body", "limit"]),
        ({"filter": {"stauts": ["failed"]}}, ["body", "filter", "stauts"]),
        ({"filter": {"status": ["lost"]}}, ["body", "filter", "status", 0]),
        ({"filter": {"metadata": {"a": [1]}}}, ["body", "filter", "metadata", "a"]),
        (
            {"filter": {"metadata": {f"k{i}": "v" for i in range(6)}}},
            ["body", "filter", "metadata.k5"],
        ),
        ({"filter": {"metadata": {"a": "b\x00"}}}, ["body", "filter", "metadata"]),
        ({"filter": {"metadata": {"a\x00": "b"}}}, ["body", "filter", "metadata"]),
    ],
)
async def test_a_bad_body_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str | int]
) -> None:
    for action in ("cancel", "retry"):
        response = await client.post(f"/api/v1/jobs/{action}", json=body)
        assert [found[: len(loc)] for found in error_locs(response)][:1] == [loc], response.text


async def test_a_body_not_sent_as_json_is_415_and_a_huge_one_413(
    client: httpx.AsyncClient,
) -> None:
    plain = await client.post(
        "/api/v1/jobs/cancel", content=b'{"ids": []}', headers={"content-type": "text/plain"}
    )
    assert_problem(plain, 415, "unsupported-media-type")

    huge = json.dumps({"ids": [str(uuid4())] * 10_000}).encode()
    headers = {"content-type": "application/json"}
    response = await client.post("/api/v1/jobs/retry", content=huge, headers=headers)
    assert_problem(response, 413, "payload-too-large")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("action", ["cancel", "retry"])
async def test_the_bulk_paths_are_not_job_ids(
    client: httpx.AsyncClient, method: str, action: str
) -> None:
    response = await client.request(method, f"/api/v1/jobs/{action}")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
