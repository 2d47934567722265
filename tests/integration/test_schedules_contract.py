"""Schedules on every database (memory, SQLite, PostgreSQL): one contract.

A schedule creates one job at each tick of its cron expression, in its time zone; a
tick missed while nothing ran is not made up (the latest runs once); a change or a
deletion holds from the next tick; many engines running the ticks at once on one
database create one job a tick; bad input is refused and stores nothing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import ManualClock
from chute.application import (
    OrchestrationEngine,
    ScheduleNotFound,
    ScheduleSpec,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.application.use_cases.scheduling import TICK_BATCH
from chute.domain import SCHEDULER, Job, JobStatus, Priority

from tests.factories import make_engine, make_new_job

START = datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC)  # 30 s past a whole hour


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def engine(database: UnitOfWorkFactory, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(uow=database, clock=clock)


def spec(cron: str = "*/5 * * * *", **fields: Any) -> ScheduleSpec:
    job = fields.pop("job", None) or make_new_job(queue="reports", priority=Priority.HIGH)
    return ScheduleSpec(cron=cron, job=job, **fields)


async def scheduled_jobs(engine: OrchestrationEngine, name: str | None = None) -> list[Job]:
    page = await engine.list_jobs(limit=200, count=False)
    return sorted(
        (job for job in page.items if job.schedule and name in (None, job.schedule)),
        key=lambda job: job.created_at,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


async def test_put_creates_then_replaces_and_keeps_the_last_run(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    saved = await engine.put_schedule("nightly", spec("0 2 * * *", timezone="Europe/Berlin"))
    assert saved.created
    assert saved.schedule.next_run_at == utc(2026, 6, 2, 0, 0)  # 02:00 CEST
    assert saved.schedule.last_run_at is None
    assert saved.schedule.job["queue"] == "reports" and saved.schedule.job["priority"] == "high"
    assert "run_after" not in saved.schedule.job

    clock._now = utc(2026, 6, 2, 0, 0, 1)
    await engine.run_due_schedules()
    replaced = await engine.put_schedule("nightly", spec("*/10 * * * *"))
    assert not replaced.created
    assert replaced.schedule.last_run_at == utc(2026, 6, 2, 0, 0)
    assert replaced.schedule.next_run_at == utc(2026, 6, 2, 0, 10)
    assert replaced.schedule.created_at == saved.schedule.created_at
    assert await engine.get_schedule("nightly") == replaced.schedule
    assert [s.name for s in await engine.list_schedules()] == ["nightly"]


async def test_a_tick_creates_one_job_with_its_event(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.put_schedule("every-5", spec())
    assert await engine.run_due_schedules() == utc(2026, 6, 1, 10, 5)
    assert await scheduled_jobs(engine) == []  # 10:00:30: no tick has come

    clock._now = utc(2026, 6, 1, 10, 5)
    assert await engine.run_due_schedules() == utc(2026, 6, 1, 10, 10)
    assert await engine.run_due_schedules() == utc(2026, 6, 1, 10, 10)  # taken: not again
    [job] = await scheduled_jobs(engine)
    assert (job.schedule, job.queue, job.priority) == ("every-5", "reports", Priority.HIGH)
    assert job.status is JobStatus.PENDING and job.created_at == clock.now()
    [event] = await engine.list_job_events(job.id)
    assert (event.actor, event.detail, event.to_status) == (SCHEDULER, "every-5", "pending")
    schedule = await engine.get_schedule("every-5")
    assert schedule.last_run_at == utc(2026, 6, 1, 10, 5)


async def test_missed_ticks_run_the_latest_once(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.put_schedule("every-5", spec())
    clock._now = utc(2026, 6, 1, 13, 7, 12)  # 37 ticks later: nothing ran meanwhile
    await engine.run_due_schedules()
    assert len(await scheduled_jobs(engine)) == 1
    schedule = await engine.get_schedule("every-5")
    assert schedule.last_run_at == utc(2026, 6, 1, 13, 5)
    assert schedule.next_run_at == utc(2026, 6, 1, 13, 10)


async def test_pause_resume_change_and_delete_hold_from_the_next_tick(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.put_schedule("s", spec(paused=True))
    assert (await engine.get_schedule("s")).next_run_at is None
    clock._now = utc(2026, 6, 1, 11, 0)
    assert await engine.run_due_schedules() is None
    assert await scheduled_jobs(engine) == []

    await engine.put_schedule("s", spec())  # resumed: the first tick after now
    assert (await engine.get_schedule("s")).next_run_at == utc(2026, 6, 1, 11, 5)
    await engine.put_schedule("s", spec("0 * * * *", job=make_new_job(queue="hourly")))
    clock._now = utc(2026, 6, 1, 11, 30)  # the old expression's ticks: none now
    await engine.run_due_schedules()
    assert await scheduled_jobs(engine) == []
    clock._now = utc(2026, 6, 1, 12, 0)
    await engine.run_due_schedules()
    assert [job.queue for job in await scheduled_jobs(engine)] == ["hourly"]

    await engine.delete_schedule("s")
    clock._now = utc(2026, 6, 1, 13, 0)
    assert await engine.run_due_schedules() is None
    assert len(await scheduled_jobs(engine)) == 1  # its job stays; no new one
    with pytest.raises(ScheduleNotFound):
        await engine.get_schedule("s")
    with pytest.raises(ScheduleNotFound):
        await engine.delete_schedule("s")


async def test_pause_and_resume_keep_the_rest_of_the_schedule(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.put_schedule("s", spec("0 2 * * *", timezone="Europe/Berlin"))
    clock._now = utc(2026, 6, 2, 0, 0)
    await engine.run_due_schedules()
    before = await engine.get_schedule("s")

    paused = await engine.pause_schedule("s")
    assert paused.paused and paused.next_run_at is None
    stored = await engine.get_schedule("s")
    assert (stored.paused, stored.next_run_at) == (True, None)
    assert (stored.cron, stored.timezone, stored.job) == (before.cron, before.timezone, before.job)
    assert stored.last_run_at == before.last_run_at == utc(2026, 6, 2, 0, 0)
    clock._now = utc(2026, 6, 3, 0, 0)
    await engine.run_due_schedules()
    assert len(await scheduled_jobs(engine)) == 1  # no tick while paused

    resumed = await engine.pause_schedule("s", paused=False)
    assert not resumed.paused
    assert (await engine.get_schedule("s")).next_run_at == utc(2026, 6, 4, 0, 0)  # after now
    with pytest.raises(ScheduleNotFound):
        await engine.pause_schedule("nothing")


@pytest.mark.parametrize(
    ("name", "schedule", "loc"),
    [
        ("Bad Name", spec(), ("name",)),
        ("s", spec("* * * *"), ("cron",)),
        ("s", spec("* * * * * *"), ("cron",)),
        ("s", spec("@daily"), ("cron",)),
        ("s", spec("61 * * * *"), ("cron",)),
        ("s", spec("0 0 30 2 *"), ("cron",)),  # February 30th never comes
        ("s", spec("* * * * \x00"), ("cron",)),
        ("s", spec("x" * 300), ("cron",)),
        ("s", spec(timezone="Mars/Olympus"), ("timezone",)),
        ("s", spec(timezone="../../../etc/passwd"), ("timezone",)),
        ("s", spec(timezone="/usr/share/zoneinfo/UTC"), ("timezone",)),
        ("s", spec(timezone=""), ("timezone",)),
        ("s", spec(job=make_new_job(source_uri="ftp://x")), ("job", "source_uri")),
        ("s", spec(job=make_new_job(queue="Not A Queue")), ("job", "queue")),
        ("s", spec(job=make_new_job(run_after=START)), ("job", "run_after")),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    engine: OrchestrationEngine, name: str, schedule: ScheduleSpec, loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await engine.put_schedule(name, schedule)
    assert loc in [error.loc for error in refused.value.errors]
    assert await engine.list_schedules() == []


async def test_one_job_a_tick_however_many_engines_run_them(
    database: UnitOfWorkFactory, database_url: str | None, clock: ManualClock
) -> None:
    """Six engines (on SQL, each its own connection pool) run the same due ticks at once."""
    databases = [database]
    if database_url is not None:
        databases += [SqlDatabase(create_engine_for(database_url)) for _ in range(5)]
    else:
        databases *= 6
    engines = [make_engine(uow=db, clock=clock) for db in databases]
    try:
        for n in range(20):
            await engines[0].put_schedule(f"s{n:02}", spec("* * * * *"))
        for minute in range(1, 4):
            clock._now = START.replace(second=0) + timedelta(minutes=minute)
            await asyncio.gather(*(engine.run_due_schedules() for engine in engines))
        jobs = await scheduled_jobs(engines[0])
        per_schedule = {f"s{n:02}": 0 for n in range(20)}
        for job in jobs:
            per_schedule[job.schedule or ""] += 1
        assert per_schedule == {name: 3 for name in per_schedule}
    finally:
        for db in databases[1:]:
            if isinstance(db, SqlDatabase):
                await db.dispose()


# -- daylight saving time ----------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")


async def walk(
    engine: OrchestrationEngine, clock: ManualClock, start: datetime, end: datetime
) -> list[datetime]:
    """Run the due ticks every 10 minutes from `start` to `end`: the local times at which
    jobs were created."""
    clock._now = start.astimezone(UTC)  # UTC: a Berlin time plus 10 minutes is wall time
    while clock.now() <= end:
        await engine.run_due_schedules()
        clock.advance(600)
    return [job.created_at.astimezone(BERLIN) for job in await scheduled_jobs(engine)]


async def test_a_dst_day_in_spring(engine: OrchestrationEngine, clock: ManualClock) -> None:
    """Europe/Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST. A daily job at 02:30
    (a time that day lacks) runs once, at the change; an hourly one runs 23 times."""
    clock._now = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)
    await engine.put_schedule("daily", spec("30 2 * * *", timezone="Europe/Berlin"))
    await engine.put_schedule("hourly", spec("0 * * * *", timezone="Europe/Berlin"))
    created = await walk(
        engine,
        clock,
        datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN),
        datetime(2026, 3, 31, 12, 0, tzinfo=BERLIN),
    )
    daily = [(j.created_at, j.schedule) for j in await scheduled_jobs(engine, "daily")]
    assert [at.astimezone(BERLIN).strftime("%d %H:%M %Z") for at, _ in daily] == [
        "29 03:00 CEST",
        "30 02:30 CEST",
        "31 02:30 CEST",
    ]
    hourly = [j.created_at for j in await scheduled_jobs(engine, "hourly")]
    on_the_day = [t for t in hourly if t.astimezone(BERLIN).date().day == 29]
    assert len(on_the_day) == 23
    assert len(created) == len(daily) + len(hourly)


async def test_a_dst_day_in_autumn(engine: OrchestrationEngine, clock: ManualClock) -> None:
    """Europe/Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET. A daily job at 02:30
    (a time that day has twice) runs once; an hourly one runs 25 times."""
    start = datetime(2026, 10, 24, 12, 0, tzinfo=BERLIN)
    clock._now = start.astimezone(UTC)
    await engine.put_schedule("daily", spec("30 2 * * *", timezone="Europe/Berlin"))
    await engine.put_schedule("hourly", spec("0 * * * *", timezone="Europe/Berlin"))
    await walk(engine, clock, start, datetime(2026, 10, 26, 12, 0, tzinfo=BERLIN))
    daily = [j.created_at.astimezone(BERLIN) for j in await scheduled_jobs(engine, "daily")]
    assert [t.strftime("%d %H:%M %Z") for t in daily] == ["25 02:30 CEST", "26 02:30 CET"]
    hourly = [j.created_at for j in await scheduled_jobs(engine, "hourly")]
    assert len([t for t in hourly if t.astimezone(BERLIN).date().day == 25]) == 25


async def test_more_due_ticks_than_one_transaction_takes(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    for n in range(TICK_BATCH * 2 + 5):
        await engine.put_schedule(f"s{n:03}", spec("* * * * *"))
    clock._now = START + timedelta(minutes=1)
    assert await engine.run_due_schedules() == START.replace(second=0) + timedelta(minutes=2)
    page = await engine.list_jobs(limit=200, count=False)
    assert page.next_cursor is not None  # more than a page: every schedule made its job
    rest = await engine.list_jobs(limit=200, count=False, cursor=page.next_cursor)
    assert len(page.items) + len(rest.items) == TICK_BATCH * 2 + 5
