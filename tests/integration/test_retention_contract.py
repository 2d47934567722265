"""The purge of old finished jobs on every database (memory, SQLite, PostgreSQL): rows,
history, detections, idempotency keys and stored files go; live jobs never do."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from datetime import timedelta
from typing import Any
from uuid import uuid4

import pytest
from chute.adapters.memory.files import MemoryFileStore
from chute.adapters.sqlalchemy import SqlDatabase
from chute.adapters.system import ManualClock
from chute.application import (
    ContentNotFound,
    IdempotencyRecord,
    JobNotFound,
    OrchestrationEngine,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.domain import CLIENT, Job, JobEvent, JobStatus, SourceType

from tests.factories import at, make_detection, make_engine, make_job, make_new_job

S = JobStatus
NOW = at(30 * 86400)
CUTOFF = NOW - timedelta(days=7)
OLD, RECENT = CUTOFF - timedelta(seconds=1), CUTOFF + timedelta(seconds=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def files(clock: ManualClock) -> MemoryFileStore:
    return MemoryFileStore(clock)


@pytest.fixture
def engine(
    database: UnitOfWorkFactory, files: MemoryFileStore, clock: ManualClock
) -> OrchestrationEngine:
    return make_engine(uow=database, files=files, clock=clock)


async def seed(
    database: UnitOfWorkFactory, files: MemoryFileStore, status: JobStatus, updated_at: Any
) -> Job:
    """A job in `status` last updated at `updated_at`, with two events, a detection and
    an uploaded file (its folder is the job's id)."""
    job = make_job(status=status, source_type=SourceType.UPLOAD, updated_at=updated_at)
    writer = await files.create(job.id, "report.pdf")
    await writer.write(b"%PDF-1.7")
    job.content_key = (await writer.finish()).key
    events = [
        JobEvent(job.id, job.created_at, None, S.PENDING, CLIENT),
        JobEvent(job.id, updated_at, S.PENDING, status, CLIENT),
    ]
    async with database() as uow:
        await uow.jobs.add([job])
        await uow.events.add(events)
        await uow.detections.add(job.id, make_detection())
        await uow.commit()
    return job


async def is_whole(engine: OrchestrationEngine, files: MemoryFileStore, job: Job) -> bool:
    """Whether the job, its history, its detection and its file are all there."""
    kept = await engine.get_job(job.id)  # JobNotFound if it went
    events = await engine.list_job_events(job.id)
    return kept.detection is not None and len(events) == 2 and job.content_key in files.keys()


async def is_gone(database: UnitOfWorkFactory, files: MemoryFileStore, job: Job) -> bool:
    async with database(read_only=True) as uow:
        row = await uow.jobs.get(job.id)
        events = await uow.events.list(job.id)
    if row is not None:
        return False
    # No detection result stayed behind either: the job added again under its id (in a
    # unit of work left without commit) comes back without one.
    async with database() as uow:
        await uow.jobs.add([dataclasses.replace(job, detection=None)])
        again = await uow.jobs.get(job.id)
    assert job.content_key is not None
    with pytest.raises(ContentNotFound):
        await anext(files.open(job.content_key))
    return not events and again is not None and again.detection is None


async def test_purge_removes_old_finished_jobs_with_their_history_detection_and_file(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, files: MemoryFileStore
) -> None:
    old = [await seed(database, files, s, OLD) for s in (S.COMPLETED, S.FAILED, S.CANCELLED)]
    recent = [await seed(database, files, s, RECENT) for s in (S.COMPLETED, S.FAILED)]

    assert await engine.purge_jobs(older_than=CUTOFF) == 3

    for job in old:
        assert await is_gone(database, files, job)
    for job in recent:
        assert await is_whole(engine, files, job)
    assert files.keys() == sorted(job.content_key or "" for job in recent)
    assert await engine.purge_jobs(older_than=CUTOFF) == 0


async def test_purge_keeps_pending_running_and_cancelling_jobs_whatever_their_age(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, files: MemoryFileStore
) -> None:
    live = [await seed(database, files, s, at(0)) for s in (S.PENDING, S.RUNNING, S.CANCELLING)]
    assert await engine.purge_jobs(older_than=NOW + timedelta(days=365)) == 0
    for job in live:
        assert await is_whole(engine, files, job)


async def test_purge_takes_only_the_statuses_asked_for(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, files: MemoryFileStore
) -> None:
    failed = await seed(database, files, S.FAILED, OLD)
    completed = await seed(database, files, S.COMPLETED, OLD)
    assert await engine.purge_jobs(older_than=CUTOFF, statuses=frozenset({S.FAILED})) == 1
    assert await is_gone(database, files, failed)
    assert await is_whole(engine, files, completed)


@pytest.mark.parametrize(
    "arguments",
    [
        {"statuses": frozenset({S.RUNNING})},
        {"statuses": frozenset({S.COMPLETED, S.PENDING})},
        {"statuses": frozenset({S.CANCELLING})},
        {"statuses": frozenset()},
        {"batch_size": 0},
        {"older_than": CUTOFF.replace(tzinfo=None)},
    ],
)
async def test_purge_refuses_live_statuses_and_bad_arguments_and_changes_nothing(
    engine: OrchestrationEngine,
    database: UnitOfWorkFactory,
    files: MemoryFileStore,
    arguments: dict[str, Any],
) -> None:
    job = await seed(database, files, S.COMPLETED, OLD)
    with pytest.raises(ValidationFailed):
        await engine.purge_jobs(**{"older_than": CUTOFF} | arguments)
    assert await is_whole(engine, files, job)


@pytest.mark.parametrize(("jobs", "batches"), [(10, [3, 3, 3, 1]), (9, [3, 3, 3])])
async def test_purge_works_in_batches_and_logs_one_count_per_batch(
    engine: OrchestrationEngine,
    database: UnitOfWorkFactory,
    files: MemoryFileStore,
    caplog: pytest.LogCaptureFixture,
    jobs: int,
    batches: list[int],
) -> None:
    for n in range(jobs):
        await seed(database, files, S.COMPLETED, OLD - timedelta(seconds=n))
    kept = await seed(database, files, S.COMPLETED, RECENT)

    with caplog.at_level(logging.INFO, logger="chute.engine"):
        assert await engine.purge_jobs(older_than=CUTOFF, batch_size=3) == jobs

    logged = [r for r in caplog.records if r.getMessage() == "jobs.purged"]
    assert [r.__dict__["count"] for r in logged] == batches
    assert files.keys() == [kept.content_key]
    assert await is_whole(engine, files, kept)


async def test_purge_forgets_expired_idempotency_keys_and_keeps_live_ones(
    engine: OrchestrationEngine, database: UnitOfWorkFactory
) -> None:
    ids = (uuid4(),)
    async with database() as uow:
        for key, age in (("old", timedelta(hours=25)), ("live", timedelta(hours=23))):
            await uow.idempotency.add(IdempotencyRecord("jobs", key, "f", ids, NOW - age))
        await uow.commit()

    await engine.purge_jobs(older_than=CUTOFF)

    async with database(read_only=True) as uow:
        assert await uow.idempotency.get("jobs", "old") is None
        assert await uow.idempotency.get("jobs", "live") is not None


async def test_a_key_whose_jobs_were_purged_creates_anew_instead_of_replaying_nothing(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    first = (await engine.create_job(make_new_job(), idempotency_key="k1")).job
    await engine.cancel_job(first.id)
    clock.advance(3600)
    assert await engine.purge_jobs(older_than=clock.now()) == 1

    again = await engine.create_job(make_new_job(), idempotency_key="k1")
    assert not again.replayed and again.job.id != first.id
    replay = await engine.create_job(make_new_job(), idempotency_key="k1")
    assert replay.replayed and replay.job.id == again.job.id


async def test_a_job_another_transaction_holds_is_skipped_or_no_longer_matches(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, files: MemoryFileStore
) -> None:
    """On PostgreSQL the purge skips the locked row without waiting for it; on SQLite and
    in memory writers take turns, so it runs after the holder and sees its change."""
    held = await seed(database, files, S.FAILED, OLD)
    other = await seed(database, files, S.COMPLETED, OLD)
    row_locks = isinstance(database, SqlDatabase) and database.engine.dialect.name != "sqlite"
    async with database() as uow:
        job = await uow.jobs.get(held.id, for_update=True)
        assert job is not None
        purge = asyncio.create_task(engine.purge_jobs(older_than=CUTOFF))
        if row_locks:
            assert await asyncio.wait_for(asyncio.shield(purge), timeout=10) == 1
        else:
            await asyncio.sleep(0.1)
            assert not purge.done()  # waiting for the writer ahead of it
        job.retry(NOW)  # a client queues it again meanwhile
        await uow.jobs.update(job)
        await uow.commit()
    assert await purge == 1

    assert await is_gone(database, files, other)
    assert (await engine.get_job(held.id)).status is S.PENDING
    assert held.content_key in files.keys()
    assert await engine.purge_jobs(older_than=CUTOFF) == 0


async def test_a_retry_waiting_behind_the_purge_finds_no_job_and_writes_no_event(
    engine: OrchestrationEngine, database: UnitOfWorkFactory
) -> None:
    """Events carry no foreign key (migration 0018): an event is written only for a job
    its transaction holds. A retry (which writes one) that waits behind the purge of its
    job finds the job gone, and leaves no event behind it."""
    job = make_job(status=S.FAILED, updated_at=OLD)
    async with database() as uow:
        await uow.jobs.add([job])
        await uow.events.add([JobEvent(job.id, OLD, S.RUNNING, S.FAILED, CLIENT)])
        await uow.commit()
    async with database() as uow:
        held = await uow.jobs.lock_purgeable(frozenset({S.FAILED}), CUTOFF, 10)
        assert [h.id for h in held] == [job.id]
        retry = asyncio.create_task(engine.retry_job(job.id))
        await asyncio.sleep(0.1)
        assert not retry.done()  # waiting for the purge's lock (or turn)
        assert await uow.jobs.delete([job.id]) == 1
        await uow.commit()
    with pytest.raises(JobNotFound):
        await retry
    async with database(read_only=True) as uow:
        assert await uow.jobs.get(job.id) is None
        assert await uow.events.list(job.id) == []


async def test_purging_while_workers_run_never_takes_a_job_from_its_worker(
    engine: OrchestrationEngine,
) -> None:
    jobs, completed, overlapped = 60, [0], [False]
    await engine.create_jobs([make_new_job(source_uri=f"https://a.org/{n}") for n in range(jobs)])
    stop = asyncio.Event()

    async def worker(n: int) -> None:
        while claimed := await engine.claim_jobs(f"w{n}", limit=2):
            for job in claimed:
                await asyncio.sleep(0)
                await engine.complete_job(job.id, f"w{n}")  # JobNotFound if it went
                completed[0] += 1

    async def purger() -> int:
        purged = 0
        while not stop.is_set():  # everything finished counts as old
            count = await engine.purge_jobs(older_than=NOW + timedelta(days=1), batch_size=5)
            overlapped[0] |= count > 0 and completed[0] < jobs
            purged += count
            await asyncio.sleep(0)
        return purged

    purging = asyncio.create_task(purger())
    await asyncio.gather(*(worker(n) for n in range(4)))
    stop.set()
    purged = await purging + await engine.purge_jobs(older_than=NOW + timedelta(days=1))
    assert completed[0] == purged == jobs
    assert overlapped[0]  # the purge did run among the workers
    assert (await engine.list_jobs()).total == 0
