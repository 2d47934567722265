"""Group commit on SQLite and PostgreSQL: the inserts of concurrent deferred units of work
committed in one transaction, each unit whole or not at all, each caller answered once
its rows are committed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.sqlalchemy.group_commit import Insert, Outcome
from chute.application import IdempotencyConflict, OrchestrationEngine
from chute.application.ports import IdempotencyRecord
from chute.domain import Job, JobEvent, JobStatus

from tests.factories import make_engine, make_job, make_new_job


class Gate:
    """Holds the committer's writes until opened, and records the size of each group."""

    def __init__(self, database: SqlDatabase) -> None:
        assert database.committer is not None
        self.groups: list[int] = []
        self.waiting = asyncio.Event()  # a group waits at the gate
        self.opened = asyncio.Event()
        write: Callable[[list[list[Insert]]], Awaitable[list[Outcome]]] = database.committer._write

        async def gated(units: list[list[Insert]]) -> list[Outcome]:
            self.waiting.set()
            await self.opened.wait()
            self.groups.append(len(units))
            return await write(units)

        database.committer._write = gated


@pytest.fixture
def database(sql_database: SqlDatabase) -> SqlDatabase:
    return sql_database  # the SQL adapter only: what is tested is its transactions


@pytest.fixture
def engine(database: SqlDatabase) -> OrchestrationEngine:
    return make_engine(uow=database)


async def add_jobs(database: SqlDatabase, *jobs: Job) -> None:
    async with database(deferred=True) as uow:
        await uow.jobs.add(list(jobs))
        await uow.commit()


async def add_key(database: SqlDatabase, key: str) -> None:
    record = IdempotencyRecord("jobs", key, "f" * 64, (), datetime.now(UTC))
    async with database(deferred=True) as uow:
        await uow.idempotency.add(record)
        await uow.commit()


async def stored(database: SqlDatabase, *job_ids: UUID) -> set[UUID]:
    async with database(read_only=True) as uow:
        return {job.id for job in await uow.jobs.get_many(list(job_ids))}


async def plugged(gate: Gate, database: SqlDatabase) -> asyncio.Task[None]:
    """A first unit, taken alone and held at the gate: the units that come next queue up
    and form the following group together."""
    plug = asyncio.create_task(add_jobs(database, make_job()))
    await gate.waiting.wait()
    return plug


async def test_concurrent_creates_are_all_committed_and_readable_on_return(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    async def create_and_read(i: int) -> UUID:
        made = await engine.create_job(make_new_job(source_uri=f"https://example.org/{i}"))
        # Answered only after COMMIT: a new transaction sees the job at once.
        assert await stored(database, made.job.id) == {made.job.id}
        assert (await engine.get_job(made.job.id)).source_uri == f"https://example.org/{i}"
        return made.job.id

    ids = await asyncio.gather(*(create_and_read(i) for i in range(200)))
    assert len(set(ids)) == 200
    assert (await engine.list_jobs(limit=1)).total == 200


async def test_concurrent_creates_share_transactions(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    # The engine reads the webhooks at its first status change (then once a second, by
    # one change, while the others go on): read here, before the gate counts groups.
    await engine.create_job(make_new_job(source_uri="https://e.org/first"))
    gate = Gate(database)
    plug = await plugged(gate, database)
    creates = [
        asyncio.create_task(engine.create_job(make_new_job(source_uri=f"https://e.org/{i}")))
        for i in range(50)
    ]
    await asyncio.sleep(0.05)  # every create has handed its rows over by now
    gate.opened.set()
    await asyncio.gather(plug, *creates)
    assert gate.groups == [1, 50]


async def test_a_taken_key_fails_its_own_unit_while_its_group_commits(
    database: SqlDatabase,
) -> None:
    await add_key(database, "taken")
    gate = Gate(database)
    plug = await plugged(gate, database)
    jobs = [make_job() for _ in range(10)]
    before = [asyncio.create_task(add_jobs(database, job)) for job in jobs[:5]]
    duplicate = asyncio.create_task(add_key(database, "taken"))
    twice = asyncio.create_task(add_key(database, "twice"))
    again = asyncio.create_task(add_key(database, "twice"))  # the same key in one group
    after = [asyncio.create_task(add_jobs(database, job)) for job in jobs[5:]]
    await asyncio.sleep(0.05)
    gate.opened.set()
    await asyncio.gather(plug, *before, twice, *after)
    with pytest.raises(IdempotencyConflict):
        await duplicate
    with pytest.raises(IdempotencyConflict):
        await again
    assert gate.groups == [1, 13]
    assert await stored(database, *(job.id for job in jobs)) == {job.id for job in jobs}
    async with database(read_only=True) as uow:
        assert await uow.idempotency.get("jobs", "twice") is not None


async def test_a_job_whose_id_exists_fails_alone_and_none_of_its_rows_stay(
    database: SqlDatabase,
) -> None:
    existing = make_job()
    await add_jobs(database, existing)
    gate = Gate(database)
    plug = await plugged(gate, database)
    others = [make_job() for _ in range(5)]
    fresh = make_job()
    # One unit: a new job, then one whose id is taken; the whole unit must go.
    failing = asyncio.create_task(add_jobs(database, fresh, make_job(id=existing.id)))
    committed = [asyncio.create_task(add_jobs(database, job)) for job in others]
    await asyncio.sleep(0.05)
    gate.opened.set()
    await asyncio.gather(plug, *committed)
    with pytest.raises(ValueError, match="does an id exist already"):
        await failing
    assert await stored(database, *(job.id for job in others)) == {job.id for job in others}
    assert await stored(database, fresh.id) == set()


async def test_a_caller_cancelled_while_waiting_leaves_later_commits_working(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    gate = Gate(database)
    plug = await plugged(gate, database)
    cancelled_job = make_job()
    cancelled = asyncio.create_task(add_jobs(database, cancelled_job))
    kept_job = make_job()
    kept = asyncio.create_task(add_jobs(database, kept_job))
    await asyncio.sleep(0.05)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.opened.set()
    await asyncio.gather(plug, kept)
    # Its group had not begun: its rows were dropped, the others' committed.
    assert await stored(database, cancelled_job.id, kept_job.id) == {kept_job.id}
    made = await engine.create_job(make_new_job())
    assert await stored(database, made.job.id) == {made.job.id}


async def test_a_caller_cancelled_while_its_group_is_written_does_not_stop_the_committer(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    gate = Gate(database)
    job = make_job()
    caller = asyncio.create_task(add_jobs(database, job))
    await gate.waiting.wait()  # its group has begun
    caller.cancel()
    gate.opened.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # Its rows may be committed (the group had begun); the committer goes on.
    made = await asyncio.gather(*(engine.create_job(make_new_job()) for _ in range(5)))
    assert await stored(database, *(m.job.id for m in made)) == {m.job.id for m in made}


async def test_concurrent_creates_with_one_key_make_one_job(
    engine: OrchestrationEngine, database: SqlDatabase
) -> None:
    new = make_new_job(source_uri="https://example.org/once")
    made = await asyncio.gather(
        *(engine.create_job(new, idempotency_key="same-key") for _ in range(20))
    )
    assert len({m.job.id for m in made}) == 1
    assert sum(not m.replayed for m in made) == 1
    assert (await engine.list_jobs(limit=1)).total == 1


async def test_closing_the_database_commits_what_was_handed_over(
    sql_url: str,
) -> None:
    database = SqlDatabase(create_engine_for(sql_url))
    jobs = [make_job() for _ in range(20)]
    try:
        commits = [asyncio.create_task(add_jobs(database, job)) for job in jobs]
        await asyncio.sleep(0)  # each has handed its rows over
        await database.close()
        await asyncio.gather(*commits)
        assert await stored(database, *(job.id for job in jobs)) == {job.id for job in jobs}
    finally:
        await database.dispose()


async def test_rows_of_a_multi_row_insert_each_keep_their_own_values(
    database: SqlDatabase,
) -> None:
    # 77 rows: statements of 64, 8, 4 and 1 rows, each row's parameters numbered apart.
    jobs = [
        make_job(source_uri=f"https://example.org/{n}", metadata={"n": n}, max_attempts=n % 20 + 1)
        for n in range(77)
    ]
    await add_jobs(database, *jobs)

    async with database(read_only=True) as uow:
        found = await uow.jobs.get_many([job.id for job in jobs])
    assert [(j.id, j.source_uri, j.metadata, j.max_attempts) for j in found] == [
        (j.id, j.source_uri, j.metadata, j.max_attempts) for j in jobs
    ]


async def test_rows_alike_in_every_column_are_each_inserted(database: SqlDatabase) -> None:
    # PostgreSQL sends a column every row shares as one value: rows alike in every
    # column still need an array to count them.
    job = make_job()
    event = JobEvent(job.id, job.created_at, None, JobStatus.PENDING, "client")
    async with database(deferred=True) as uow:
        await uow.jobs.add([job])
        await uow.events.add([event, event, event])
        await uow.commit()

    async with database(read_only=True) as uow:
        assert await uow.events.list(job.id) == [event, event, event]


async def test_columns_shared_by_all_rows_but_one_keep_each_row_s_value(
    database: SqlDatabase,
) -> None:
    jobs = [make_job(queue="a", metadata={}) for _ in range(9)]
    jobs.append(make_job(queue="b", metadata={"last": True}))
    jobs.insert(0, make_job(queue="c", metadata={"first": 1}))
    await add_jobs(database, *jobs)

    async with database(read_only=True) as uow:
        found = await uow.jobs.get_many([job.id for job in jobs])
    assert [(j.queue, j.metadata) for j in found] == [(j.queue, j.metadata) for j in jobs]
