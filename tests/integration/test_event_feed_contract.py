"""The event feed on every database (memory, SQLite, PostgreSQL): one contract.

The feed answers committed events in commit order: a reader that resumes after any
event it was given receives every later event exactly once, even while many writers
commit at once and take their ids in another order than they commit (PostgreSQL).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import SystemClock
from chute.application import OrchestrationEngine
from chute.application.feed import EventFeed
from chute.application.ports import UnitOfWorkFactory
from chute.domain import CLIENT, JobEvent, JobStatus

from tests.factories import make_engine, make_job, make_new_job


async def read_all(database: UnitOfWorkFactory, after: int | None, batch: int = 7) -> list[int]:
    """Every event id the feed answers after `after`, in pages of `batch`."""
    ids: list[int] = []
    while True:
        async with database(read_only=True) as uow:
            page = await uow.events.feed(after, batch)
        ids += [event.id for event in page]
        if len(page) < batch:
            return ids
        after = page[-1].id


async def test_the_feed_answers_events_in_order_from_any_point(
    database: UnitOfWorkFactory,
) -> None:
    engine = make_engine(uow=database)
    async with database(read_only=True) as uow:
        assert await uow.events.feed(None, 10) == []
        assert await uow.events.feed_head() is None
    made = [(await engine.create_job(make_new_job())).job for _ in range(5)]
    await engine.cancel_job(made[0].id)
    ids = await read_all(database, None)
    assert len(ids) == 6 and len(set(ids)) == 6
    async with database(read_only=True) as uow:
        page = await uow.events.feed(None, 10)
        head = await uow.events.feed_head()
    assert head is not None and head.id == ids[-1] and head.position == page[-1].position
    assert [event.event.job_id for event in page[:5]] == [job.id for job in made]
    assert (page[5].event.from_status, page[5].event.to_status) == (
        JobStatus.PENDING,
        JobStatus.CANCELLED,
    )
    positions = [event.position for event in page]
    assert positions == sorted(positions)
    async with database(read_only=True) as uow:
        assert [await uow.events.feed_position(event.id) for event in page] == positions
        assert await uow.events.feed_position(ids[-1] + 1000) is None
    for n, event_id in enumerate(ids):
        assert await read_all(database, event_id) == ids[n + 1 :]


async def test_an_event_purged_since_resumes_after_it(database: UnitOfWorkFactory) -> None:
    engine = make_engine(uow=database)
    first = (await engine.create_job(make_new_job())).job
    ids = await read_all(database, None)
    second = (await engine.create_job(make_new_job())).job
    async with database() as uow:
        await uow.jobs.delete([first.id])
        await uow.commit()
    [later] = await read_all(database, ids[0])
    async with database(read_only=True) as uow:
        [event] = await uow.events.feed(ids[0], 10)
    assert later == event.id and event.event.job_id == second.id


async def test_a_reader_misses_nothing_while_eight_writers_commit(
    database: UnitOfWorkFactory, database_url: str | None
) -> None:
    """Eight writers, each in its own connection pool on SQL, write events in
    transactions that stay open a random while after taking their ids; a reader follows
    the feed meanwhile, and readers resume from random points it was given. Each gets
    every event once, in one order, which is the order of the whole history."""
    writers = [database] * 8
    if database_url is not None:
        writers = [SqlDatabase(create_engine_for(database_url)) for _ in range(8)]
    engine = make_engine(uow=database)
    job = (await engine.create_job(make_new_job())).job
    start = (await read_all(database, None))[-1]
    done = asyncio.Event()
    followed: list[int] = []

    async def write(db: UnitOfWorkFactory, n: int) -> None:
        rng = random.Random(n)
        for _ in range(25):
            async with db() as uow:
                events = [
                    JobEvent(job.id, job.created_at, None, JobStatus.PENDING, CLIENT, f"{n}")
                    for _ in range(rng.randint(1, 3))
                ]
                await uow.events.add(events)  # takes its ids now (SQL), or at commit (memory)
                await asyncio.sleep(rng.random() * 0.01)  # commit later than others did
                await uow.commit()

    async def follow() -> None:
        after = start
        while True:
            finished = done.is_set()  # then one more read finds the rest
            page = await read_all(database, after)
            followed.extend(page)
            after = page[-1] if page else after
            if finished and not page:
                return
            await asyncio.sleep(0.002)

    try:
        reader = asyncio.create_task(follow())
        await asyncio.gather(*(write(db, n) for n, db in enumerate(writers)))
        done.set()
        await reader
    finally:
        for db in set(writers) - {database}:
            assert isinstance(db, SqlDatabase)
            await db.dispose()

    history = await read_all(database, start)
    assert Counter(followed) == Counter(history)  # every event once
    assert followed == history  # and in one order
    assert len(history) == len(set(history)) >= 200
    for cut in random.Random(1).sample(range(len(history)), 10):
        assert await read_all(database, history[cut]) == history[cut + 1 :]


async def test_running_jobs_changed_since(database: UnitOfWorkFactory) -> None:
    engine: OrchestrationEngine = make_engine(uow=database)
    job = make_job()
    async with database() as uow:
        await uow.jobs.add([job])
        await uow.commit()
    [claimed] = await engine.claim_jobs("w1")
    await engine.heartbeat(claimed.id, "w1", progress=40, progress_message="half")
    async with database(read_only=True) as uow:
        [running] = await uow.jobs.running_since(claimed.created_at, 10)
        assert (running.progress, running.progress_message) == (40, "half")
        later = running.updated_at.replace(year=running.updated_at.year + 1)
        assert await uow.jobs.running_since(later, 10) == []


class Nudge:
    """A change signal the test gives: the feed reads when nudged, never by itself."""

    def __init__(self) -> None:
        self._nudged = asyncio.Event()

    def nudge(self) -> None:
        self._nudged.set()

    async def wait(self, at_most: float) -> None:
        await self._nudged.wait()
        self._nudged.clear()

    async def close(self) -> None:
        pass


async def test_a_stream_resumed_on_a_feed_that_lags_repeats_nothing(
    database: UnitOfWorkFactory,
) -> None:
    """A client got an event from one process and resumes after it on another, whose
    feed (kept reading by another stream) has not read that far yet: what that feed
    reads next up to the client's event is not sent again."""
    engine = make_engine(uow=database)
    signal = Nudge()
    feed = EventFeed(database, signal, SystemClock())
    reading = asyncio.create_task(feed.run())
    try:
        other = await feed.subscribe()
        for _ in range(3):
            await engine.create_job(make_new_job())
        resumed_after = (await read_all(database, None))[-1]  # as another process sent it
        stream = feed.follow(await feed.subscribe(), resumed_after, idle=0.05, most=100)
        assert await anext(stream) == []  # nothing after it yet
        signal.nudge()  # the feed reads the three creations: the client has them
        await engine.create_job(make_new_job())
        await asyncio.sleep(0.05)
        signal.nudge()

        async def sent() -> list[int]:
            while not (burst := await anext(stream)):
                pass
            return [item.fed.id for item in burst if item.fed is not None]

        assert await asyncio.wait_for(sent(), 10) == (await read_all(database, resumed_after))
        assert len(other.ready(10)) == 4  # the other stream got all four
    finally:
        reading.cancel()
