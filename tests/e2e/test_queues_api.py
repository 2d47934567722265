"""Queues over HTTP: `queue` and `run_after` on creates and uploads, the `queue` filter,
the claim's `queues`, and `/api/v1/queues` (list, one, pause and limit)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.system import ManualClock
from chute.application import FileStore

from tests.e2e.helpers import (
    CLOCK_START,
    URL_JOB,
    assert_problem,
    at,
    claim,
    create_job,
    error_locs,
)

pytestmark = pytest.mark.usefixtures("clock")
QUEUES = "/api/v1/queues"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


def rfc3339(delta: timedelta) -> str:
    return (CLOCK_START + delta).isoformat()


async def job_ids(client: httpx.AsyncClient, query: str = "") -> set[str]:
    response = await client.get(f"/api/v1/jobs{query}")
    assert response.status_code == 200, response.text
    return {job["id"] for job in response.json()["items"]}


async def patch(client: httpx.AsyncClient, name: str, **body: Any) -> dict[str, Any]:
    response = await client.patch(f"{QUEUES}/{name}", json=body)
    assert response.status_code == 200, response.text
    queue: dict[str, Any] = response.json()
    return queue


def stored_files(storage: Path) -> list[Path]:
    return [p for p in storage.rglob("*") if p.is_file() and not p.name.startswith(".")]


# -- jobs -----------------------------------------------------------------------------------


async def test_a_job_carries_its_queue_and_no_schedule(client: httpx.AsyncClient) -> None:
    plain = await create_job(client)
    mailed = await create_job(client, queue="mail.out_2-b")

    assert (plain["queue"], plain["schedule"]) == ("default", None)
    assert mailed["queue"] == "mail.out_2-b"


async def test_run_after_holds_a_job_back_until_its_time(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    job = await create_job(client, run_after="2026-11-29T13:00:00+01:00")  # 12:00 UTC: now
    later = await create_job(client, run_after=rfc3339(timedelta(minutes=5)))

    assert job["run_after"] is None
    assert at(later["run_after"]) == CLOCK_START + timedelta(minutes=5)
    assert [j["id"] for j in await claim(client, limit=10)] == [job["id"]]
    clock.advance(300)
    assert [j["id"] for j in await claim(client, limit=10)] == [later["id"]]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"queue": "Upper"}, ["body", "queue"]),
        ({"queue": ""}, ["body", "queue"]),
        ({"queue": "q" * 65}, ["body", "queue"]),
        ({"run_after": "2026-12-01T00:00:00"}, ["body", "run_after"]),  # no offset
        ({"run_after": "tomorrow"}, ["body", "run_after"]),
        ({"run_after": rfc3339(timedelta(days=366, seconds=1))}, ["body", "run_after"]),
    ],
)
async def test_a_bad_queue_or_run_after_is_a_422_naming_it_and_makes_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    response = await client.post("/api/v1/jobs", json=URL_JOB | body)
    assert error_locs(response) == [loc]

    batch = {"jobs": [URL_JOB, URL_JOB | body]}
    response = await client.post("/api/v1/jobs/batch", json=batch)
    assert error_locs(response) == [["body", "jobs", 1, *loc[1:]]]
    assert await job_ids(client) == set()
    assert (await client.get(QUEUES)).json() == {"items": []}


async def test_batch_jobs_take_each_its_queue(client: httpx.AsyncClient) -> None:
    batch = {"jobs": [URL_JOB | {"queue": "a"}, URL_JOB | {"queue": "b"}, URL_JOB]}
    response = await client.post("/api/v1/jobs/batch", json=batch)
    assert response.status_code == 201, response.text
    assert [job["queue"] for job in response.json()["jobs"]] == ["a", "b", "default"]


async def test_uploads_take_queue_and_run_after_as_form_fields(
    client: httpx.AsyncClient, storage: Path
) -> None:
    files = {"file": ("a.txt", b"hello, queues\n", "text/plain")}
    data = {"queue": "ingest", "run_after": rfc3339(timedelta(hours=1))}
    response = await client.post("/api/v1/upload", files=files, data=data)
    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    assert job["queue"] == "ingest"
    assert at(job["run_after"]) == CLOCK_START + timedelta(hours=1)
    assert await claim(client) == []


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"queue": "No Spaces"}, ["body", "queue"]),
        ({"run_after": "soon"}, ["body", "run_after"]),
        ({"run_after": rfc3339(timedelta(days=400))}, ["body", "run_after"]),
    ],
)
async def test_an_upload_with_a_bad_queue_or_run_after_leaves_no_job_and_no_file(
    client: httpx.AsyncClient, storage: Path, data: dict[str, str], loc: list[str]
) -> None:
    files = {"file": ("a.txt", b"hello, queues\n", "text/plain")}
    response = await client.post("/api/v1/upload", files=files, data=data)

    assert error_locs(response) == [loc]
    assert await job_ids(client) == set()
    assert stored_files(storage) == []


async def test_lists_filter_by_repeated_queue_and_an_unknown_queue_is_empty(
    client: httpx.AsyncClient,
) -> None:
    a = await create_job(client, queue="a")
    b = await create_job(client, queue="b")
    await create_job(client, queue="c")

    assert await job_ids(client, "?queue=a&queue=b") == {a["id"], b["id"]}
    assert await job_ids(client, "?queue=nothing") == set()
    assert error_locs(await client.get("/api/v1/jobs?queue=Bad!")) == [["query", "queue", 0]]


async def test_a_claim_takes_only_the_queues_it_names(client: httpx.AsyncClient) -> None:
    a = await create_job(client, queue="a")
    await create_job(client, queue="b")

    assert [j["id"] for j in await claim(client, limit=10, queues=["a", "z"])] == [a["id"]]
    response = await client.post(
        "/api/v1/jobs/claim", json={"worker_id": "w1", "queues": ["not valid"]}
    )
    assert error_locs(response) == [["body", "queues", 0]]


# -- /api/v1/queues -------------------------------------------------------------------------


async def test_the_queue_list_shows_each_queue_with_its_counts(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = await create_job(client, queue="work")
    clock.advance(1)
    await create_job(client, queue="work")
    await create_job(client, queue="work", run_after=rfc3339(timedelta(hours=1)))
    await patch(client, "later", concurrency_limit=2)
    [running] = await claim(client, queues=["work"])
    assert running["id"] == first["id"]

    response = await client.get(QUEUES)

    assert response.status_code == 200
    work, later = sorted(response.json()["items"], key=lambda q: q["name"], reverse=True)
    assert work == {
        "name": "work",
        "paused": False,
        "concurrency_limit": None,
        "counts": {"pending": 1, "scheduled": 1, "running": 1, "cancelling": 0},
        "completed_last_hour": 0,
        "failed_last_hour": 0,
        "oldest_pending_at": "2026-11-29T12:00:01.000000Z",
    }
    assert (later["name"], later["concurrency_limit"], later["oldest_pending_at"]) == (
        "later",
        2,
        None,
    )


async def test_one_queue_is_read_by_name_and_an_unknown_one_is_404(
    client: httpx.AsyncClient,
) -> None:
    await create_job(client, queue="here")

    response = await client.get(f"{QUEUES}/here")
    assert response.status_code == 200
    assert response.json()["counts"]["pending"] == 1
    assert_problem(await client.get(f"{QUEUES}/nowhere"), 404, "queue-not-found")
    assert error_locs(await client.get(f"{QUEUES}/NOT.valid")) == [["path", "name"]]


async def test_a_paused_queue_keeps_its_jobs_from_claims_until_resumed(
    client: httpx.AsyncClient,
) -> None:
    paused = await patch(client, "q", paused=True)
    assert (paused["paused"], paused["concurrency_limit"]) == (True, None)
    job = await create_job(client, queue="q")  # a paused queue takes new jobs

    assert await claim(client, limit=10) == []
    await patch(client, "q", paused=False)
    assert [j["id"] for j in await claim(client, limit=10)] == [job["id"]]


async def test_a_limit_is_set_changed_and_lifted_and_other_fields_are_kept(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(4):
        await create_job(client, queue="q")
    assert (await patch(client, "q", concurrency_limit=2, paused=False))["concurrency_limit"] == 2
    assert len(await claim(client, limit=10)) == 2
    assert (await patch(client, "q", paused=True))["concurrency_limit"] == 2  # kept
    assert (await patch(client, "q", paused=False, concurrency_limit=None))[
        "concurrency_limit"
    ] is None
    assert len(await claim(client, limit=10)) == 2


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"concurrency_limit": 0}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": 10001}, ["body", "concurrency_limit"]),
        ({"concurrency_limit": "3"}, ["body", "concurrency_limit"]),
        ({"paused": "yes"}, ["body", "paused"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
async def test_a_bad_queue_change_is_a_422_and_makes_no_settings(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    response = await client.patch(f"{QUEUES}/q", json=body)

    assert error_locs(response) == [loc]
    assert_problem(await client.get(f"{QUEUES}/q"), 404, "queue-not-found")
    assert error_locs(await client.patch(f"{QUEUES}/Bad Name", json={})) == [["path", "name"]]
