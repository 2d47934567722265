"""cancel_jobs and retry_jobs on every database: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from uuid import UUID

import pytest
from chute.application import (
    BulkOutcome,
    JobFilter,
    JobSelection,
    OrchestrationEngine,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.domain import CLIENT, ChuteError, Job, JobStatus
from chute.domain.values import TRANSITIONS

from tests.factories import make_engine, make_new_job

S = JobStatus


@pytest.fixture
def engine(database: UnitOfWorkFactory) -> OrchestrationEngine:
    return make_engine(uow=database)


async def made(engine: OrchestrationEngine, status: S, **fields: object) -> Job:
    """A job brought to `status` along the edges of the diagram."""
    job = (await engine.create_job(make_new_job(**fields))).job
    path = {
        S.PENDING: [],
        S.RUNNING: [S.RUNNING],
        S.CANCELLING: [S.RUNNING, S.CANCELLING],
        S.COMPLETED: [S.RUNNING, S.COMPLETED],
        S.FAILED: [S.RUNNING, S.FAILED],
        S.CANCELLED: [S.CANCELLED],
    }[status]
    for step in path:
        job = await engine.update_job_status(job.id, step)
    return job


async def statuses(engine: OrchestrationEngine, *jobs: Job) -> list[S]:
    return [(await engine.get_job(job.id)).status for job in jobs]


async def test_cancel_by_ids_changes_each_job_as_cancel_job_would(
    engine: OrchestrationEngine,
) -> None:
    jobs = [await made(engine, s) for s in (S.PENDING, S.RUNNING, S.CANCELLING, S.COMPLETED)]
    unknown = UUID(int=7)

    outcome = await engine.cancel_jobs(JobSelection(ids=(*(j.id for j in jobs), unknown)))

    assert outcome == BulkOutcome(matched=4, changed=2, unchanged=3, more=False)
    assert await statuses(engine, *jobs) == [S.CANCELLED, S.CANCELLING, S.CANCELLING, S.COMPLETED]
    last = (await engine.list_job_events(jobs[0].id))[-1]
    assert (last.from_status, last.to_status, last.actor) == (S.PENDING, S.CANCELLED, CLIENT)
    assert len(await engine.list_job_events(jobs[3].id)) == 3  # created, running, completed


async def test_retry_by_ids_queues_failed_and_cancelled_jobs_only(
    engine: OrchestrationEngine,
) -> None:
    jobs = [await made(engine, s) for s in (S.FAILED, S.CANCELLED, S.PENDING, S.COMPLETED)]

    outcome = await engine.retry_jobs(JobSelection(ids=tuple(j.id for j in jobs)))

    assert outcome == BulkOutcome(matched=4, changed=2, unchanged=2, more=False)
    assert await statuses(engine, *jobs) == [S.PENDING, S.PENDING, S.PENDING, S.COMPLETED]
    retried = await engine.get_job(jobs[0].id)
    assert retried.max_attempts >= retried.attempts + 1 and retried.finished_at is None


async def test_a_filter_acts_on_its_jobs_limit_at_a_time_and_says_when_more_match(
    engine: OrchestrationEngine,
) -> None:
    acme = [await made(engine, S.FAILED, metadata={"tenant": "acme"}) for _ in range(5)]
    other = await made(engine, S.FAILED, metadata={"tenant": "globex"})
    done = await made(engine, S.COMPLETED, metadata={"tenant": "acme"})
    filt = JobFilter(metadata=(("tenant", "acme"),))

    calls = []
    while not calls or calls[-1].more:
        calls.append(await engine.retry_jobs(JobSelection(filter=filt, limit=2)))

    assert calls == [
        BulkOutcome(matched=2, changed=2, unchanged=0, more=True),
        BulkOutcome(matched=2, changed=2, unchanged=0, more=True),
        BulkOutcome(matched=1, changed=1, unchanged=0, more=False),
    ]
    assert set(await statuses(engine, *acme)) == {S.PENDING}
    assert await statuses(engine, other, done) == [S.FAILED, S.COMPLETED]


async def test_a_filter_with_statuses_the_action_cannot_leave_matches_nothing(
    engine: OrchestrationEngine,
) -> None:
    job = await made(engine, S.COMPLETED)
    filt = JobFilter(statuses=frozenset({S.COMPLETED}))

    assert await engine.cancel_jobs(JobSelection(filter=filt)) == BulkOutcome(0, 0, 0, False)
    assert await statuses(engine, job) == [S.COMPLETED]


@pytest.mark.parametrize(
    "selection",
    [
        JobSelection(),
        JobSelection(ids=()),
        JobSelection(ids=tuple(UUID(int=i) for i in range(1001))),
        JobSelection(ids=(UUID(int=1),), filter=JobFilter()),
        JobSelection(filter=JobFilter(), limit=0),
        JobSelection(filter=JobFilter(), limit=10_001),
        JobSelection(filter=JobFilter(metadata=tuple((f"k{i}", "v") for i in range(6)))),
    ],
)
async def test_a_bad_selection_is_refused(
    engine: OrchestrationEngine, selection: JobSelection
) -> None:
    with pytest.raises(ValidationFailed):
        await engine.cancel_jobs(selection)


async def test_bulk_calls_and_workers_together_only_follow_the_status_diagram(
    engine: OrchestrationEngine,
) -> None:
    jobs = [(await engine.create_job(make_new_job())).job for _ in range(30)]

    async def worker(name: str) -> None:
        for round_ in range(12):
            for job in await engine.claim_jobs(name, limit=3):
                try:
                    if round_ % 3:
                        await engine.complete_job(job.id, name)
                    else:
                        await engine.fail_job(job.id, name, "no", retryable=False)
                except ChuteError:
                    pass  # cancelled meanwhile: the worker's report is refused or ends it

    async def bulk() -> None:
        for round_ in range(12):
            await engine.cancel_jobs(JobSelection(filter=JobFilter(), limit=7))
            await engine.retry_jobs(JobSelection(filter=JobFilter(), limit=5))
            await engine.cancel_jobs(JobSelection(ids=tuple(j.id for j in jobs[round_::4])))

    await asyncio.gather(worker("w1"), worker("w2"), bulk(), bulk())

    for job in jobs:
        events = await engine.list_job_events(job.id)
        assert (events[0].from_status, events[0].to_status) == (None, S.PENDING)
        for before, after in pairwise(events):
            assert after.from_status == before.to_status, events
            assert after.to_status in TRANSITIONS[before.to_status], events
        assert (await engine.get_job(job.id)).status is events[-1].to_status
