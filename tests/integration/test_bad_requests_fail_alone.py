"""One bad request fails only itself, on SQLite and on PostgreSQL: creates that share a
group commit, batches, claims, and the completions a worker settles in one transaction.

Validation refuses such input before it reaches a database; here it is turned off
(monkeypatched), so that what the storage does with a row it cannot store is tested
on its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chute.adapters.sqlalchemy import SqlDatabase
from chute.adapters.sqlalchemy.errors import UNSTORABLE_VALUE
from chute.application import FieldError, NewJob, OrchestrationEngine, ValidationFailed
from chute.domain import Job, JobStatus
from chute.domain import validation as rules

from tests.factories import make_engine, make_new_job

CLIENTS, CREATES = 8, 25


@pytest.fixture
def database(sql_database: SqlDatabase) -> SqlDatabase:
    return sql_database  # the SQL adapter only: what is tested is its transactions


@pytest.fixture
def engine(database: SqlDatabase) -> OrchestrationEngine:
    return make_engine(uow=database)


@pytest.fixture
def unchecked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's validation of job specs, results and worker ids turned off."""
    monkeypatch.setattr(NewJob, "problems", lambda self, now=None: [])
    monkeypatch.setattr(rules, "check_result", lambda value: value)
    monkeypatch.setattr(rules, "check_worker_id", lambda value: value)


def unstorable_specs(database: SqlDatabase) -> list[NewJob]:
    """Jobs this database cannot store: a surrogate on both; NUL on PostgreSQL too."""
    specs = [make_new_job(source_uri="https://example.org/\ud800")]
    if database.engine.dialect.name == "postgresql":
        specs += [make_new_job(metadata={"k": "\x00"}), make_new_job(file_name="a\x00b")]
    return specs


async def total(engine: OrchestrationEngine) -> int:
    page = await engine.list_jobs(limit=1)
    assert page.total is not None
    return page.total


@pytest.mark.usefixtures("unchecked")
async def test_clients_keep_creating_while_another_sends_jobs_no_database_stores(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    stop = asyncio.Event()
    refused: list[ValidationFailed] = []

    async def client(n: int) -> int:
        for i in range(CREATES):
            await engine.create_job(make_new_job(source_uri=f"https://example.org/{n}/{i}"))
        return CREATES

    async def bad_client() -> None:
        specs = unstorable_specs(database)
        while not stop.is_set():
            for spec in specs:
                try:
                    await engine.create_job(spec)
                except ValidationFailed as e:
                    refused.append(e)
            await asyncio.sleep(0.002)

    bad = asyncio.create_task(bad_client())
    try:
        created = await asyncio.gather(*(client(n) for n in range(CLIENTS)))
    finally:
        stop.set()
        await bad
    assert sum(created) == CLIENTS * CREATES  # no innocent create failed
    assert await total(engine) == CLIENTS * CREATES  # and no bad one was stored
    assert refused
    assert {error.loc for e in refused for error in e.errors} <= {
        ("source_uri",),
        ("metadata",),
        ("file_name",),
    }
    assert {error.msg for e in refused for error in e.errors} == {UNSTORABLE_VALUE}


@pytest.mark.usefixtures("unchecked")
async def test_a_batch_holding_a_job_no_database_stores_fails_whole_and_alone(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    for bad in unstorable_specs(database):
        batch = [make_new_job(), bad, make_new_job()]
        others = [engine.create_job(make_new_job()) for _ in range(10)]
        results = await asyncio.gather(
            engine.create_jobs(batch), *others, engine.create_jobs([make_new_job()] * 3),
            return_exceptions=True,
        )  # fmt: skip
        assert isinstance(results[0], ValidationFailed)
        assert not any(isinstance(result, Exception) for result in results[1:]), results
    assert await total(engine) == 13 * len(unstorable_specs(database))


async def running_jobs(engine: OrchestrationEngine, count: int) -> list[Job]:
    await engine.create_jobs([make_new_job() for _ in range(count)])
    return await engine.claim_jobs("w1", limit=count)


@pytest.mark.usefixtures("unchecked")
async def test_one_result_no_database_stores_fails_only_its_own_completion(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    # Cannot be bound on either database (not JSON); NUL in jsonb is PostgreSQL's refusal.
    bad: list[dict[str, Any]] = [{"set": {1}}]
    if database.engine.dialect.name == "postgresql":
        bad += [{"nul": "\x00"}, {"\x00": 1}, {"s": "\ud800"}]
    good = [{"n": n} for n in range(4)]
    jobs = await running_jobs(engine, len(good) + len(bad))
    results = good[:2] + bad + good[2:]

    outcomes = await engine.complete_jobs(
        "w1", [(job.id, result) for job, result in zip(jobs, results, strict=True)]
    )

    for job, result, outcome in zip(jobs, results, outcomes, strict=True):
        stored = await engine.get_job(job.id)
        if result in good:
            assert isinstance(outcome, Job) and outcome.status is JobStatus.COMPLETED
            assert (stored.status, stored.result) == (JobStatus.COMPLETED, result)
        else:
            assert isinstance(outcome, Exception), outcome
            assert (stored.status, stored.result) == (JobStatus.RUNNING, None)
    nul_refusals = [outcome for outcome in outcomes if isinstance(outcome, ValidationFailed)]
    assert all(e.errors == [FieldError((), UNSTORABLE_VALUE)] for e in nul_refusals)


@pytest.mark.usefixtures("unchecked")
async def test_a_result_no_database_stores_fails_only_its_own_completion_not_the_claim_with_it(
    engine: OrchestrationEngine,
) -> None:
    jobs = await running_jobs(engine, 3)
    waiting = (await engine.create_jobs([make_new_job() for _ in range(2)])).jobs
    results: list[dict[str, Any] | None] = [{"n": 1}, {"set": {1}}, None]  # not JSON

    outcomes, claimed = await engine.complete_and_claim(
        "w1", [(job.id, result) for job, result in zip(jobs, results, strict=True)], limit=2
    )

    assert [isinstance(outcome, Job) for outcome in outcomes] == [True, False, True]
    statuses = [(await engine.get_job(job.id)).status for job in jobs]
    assert statuses == [JobStatus.COMPLETED, JobStatus.RUNNING, JobStatus.COMPLETED]
    assert sorted(job.id for job in claimed) == sorted(job.id for job in waiting)
    assert {(await engine.get_job(job.id)).worker_id for job in waiting} == {"w1"}


@pytest.mark.usefixtures("unchecked")
async def test_completions_recorded_apart_are_answered_even_when_the_claim_then_fails(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = await running_jobs(engine, 2)
    await engine.create_jobs([make_new_job()])

    async def refused(*args: Any, **kwargs: Any) -> list[Job]:
        raise RuntimeError("the claim failed")

    monkeypatch.setattr(engine, "claim_jobs", refused)
    outcomes, claimed = await engine.complete_and_claim(
        "w1", [(jobs[0].id, {"set": {1}}), (jobs[1].id, None)], limit=1
    )

    assert [isinstance(outcome, Job) for outcome in outcomes] == [False, True]
    assert claimed == []
    assert (await engine.get_job(jobs[1].id)).status is JobStatus.COMPLETED


@pytest.mark.usefixtures("unchecked")
async def test_a_claim_no_database_can_record_fails_alone_and_leaves_its_jobs_claimable(
    engine: OrchestrationEngine,
) -> None:
    jobs = await engine.create_jobs([make_new_job() for _ in range(20)])
    claimed: list[Job] = []
    refusals = 0

    async def claimer(worker_id: str) -> None:
        nonlocal refusals
        while len(claimed) < len(jobs.jobs):
            try:
                claimed.extend(await engine.claim_jobs(worker_id, limit=2))
            except ValidationFailed:
                refusals += 1
                if refusals >= 20:
                    return
            await asyncio.sleep(0)

    await asyncio.wait_for(
        asyncio.gather(claimer("w1"), claimer("w2"), claimer("w\ud800")), timeout=60
    )
    assert refusals >= 1
    assert sorted(job.id for job in claimed) == sorted(job.id for job in jobs.jobs)
    assert {job.worker_id for job in claimed} <= {"w1", "w2"}
