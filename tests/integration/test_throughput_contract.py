"""The overview's chart on every database (memory, SQLite, PostgreSQL): one contract.

`finished_per_minute` counts the jobs completed and failed in each minute of a window
that ends with the current minute, by the UTC minute of their `finished_at`: jobs that
finished before the window, jobs still held, cancelled ones and failed attempts that
will be retried are not counted.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from chute.adapters.sqlalchemy import create_engine_for
from chute.adapters.sqlalchemy.statements import finished_per_minute
from chute.adapters.system import ManualClock
from chute.application import MinuteCounts, OrchestrationEngine, ValidationFailed
from chute.application.ports import UnitOfWorkFactory
from chute.domain import JobStatus
from sqlalchemy.engine import Connection

from tests.factories import make_engine, make_new_job

HOUR_START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minute: int, second: float = 0) -> datetime:
    return HOUR_START + timedelta(minutes=minute, seconds=second)


def move(clock: ManualClock, moment: datetime) -> None:
    clock.advance((moment - clock.now()).total_seconds())
    assert clock.now() == moment


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(at(0))


@pytest.fixture
def engine(database: UnitOfWorkFactory, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(uow=database, clock=clock, jitter=lambda: 1.0)


async def finished(
    engine: OrchestrationEngine, clock: ManualClock, moment: datetime, outcome: str
) -> None:
    """A job created, claimed and finished at `moment`: `completed`, `failed` (for good),
    `retried` (a failed attempt with attempts left), `running` or `cancelled`."""
    move(clock, moment)
    created = (await engine.create_job(make_new_job(max_attempts=2))).job
    if outcome == "cancelled":
        await engine.cancel_job(created.id)
        return
    [job] = await engine.claim_jobs("w1")
    assert job.id == created.id
    if outcome == "completed":
        await engine.complete_job(job.id, "w1")
    elif outcome == "failed":
        await engine.fail_job(job.id, "w1", "broken", retryable=False)
    elif outcome == "retried":
        assert (await engine.fail_job(job.id, "w1", "flaky")).status is JobStatus.PENDING
        await engine.cancel_job(job.id)  # out of the way of the next claim
    else:
        assert outcome == "running"


def nonzero(counts: list[MinuteCounts]) -> dict[datetime, tuple[int, int]]:
    return {c.minute: (c.completed, c.failed) for c in counts if c.completed or c.failed}


async def test_the_last_hour_is_counted_by_minute_and_outcome(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await finished(engine, clock, at(-30), "completed")  # an hour before: not counted
    await finished(engine, clock, at(0, 59.999999), "completed")  # the minute before the window
    await finished(engine, clock, at(1), "completed")  # the window's first instant
    await finished(engine, clock, at(5, 59.999999), "completed")
    await finished(engine, clock, at(5, 0.5), "failed")
    await finished(engine, clock, at(5, 10), "failed")
    await finished(engine, clock, at(30), "retried")
    await finished(engine, clock, at(31), "cancelled")
    await finished(engine, clock, at(32), "running")
    await finished(engine, clock, at(59, 1), "failed")
    await finished(engine, clock, at(60, 2), "completed")
    await finished(engine, clock, at(60, 3), "completed")

    move(clock, at(60, 20))
    counts = await engine.finished_per_minute()

    assert [c.minute for c in counts] == [at(m) for m in range(1, 61)]
    assert all(c.minute.tzinfo is not None and c.minute.utcoffset() == timedelta(0) for c in counts)
    assert nonzero(counts) == {
        at(1): (1, 0),
        at(5): (1, 2),
        at(59): (0, 1),
        at(60): (2, 0),
    }


async def test_an_empty_hour_is_sixty_zeros(engine: OrchestrationEngine) -> None:
    counts = await engine.finished_per_minute()
    assert len(counts) == 60 and nonzero(counts) == {}
    assert counts[-1].minute == at(0)


async def test_a_shorter_window_and_its_bounds(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await finished(engine, clock, at(2, 30), "failed")
    await finished(engine, clock, at(4), "completed")
    move(clock, at(4, 59))
    counts = await engine.finished_per_minute(2)
    assert [(c.minute, c.completed, c.failed) for c in counts] == [(at(3), 0, 0), (at(4), 1, 0)]
    with pytest.raises(ValidationFailed):
        await engine.finished_per_minute(0)


def plan(conn: Connection) -> str:
    """The plan of the chart's statement, with its parameters written in."""
    stmt = finished_per_minute(at(0), conn.dialect.name)
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is no measure
    return " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


async def test_the_hour_is_read_by_the_finished_jobs_index(sql_url: str) -> None:
    """Cheap at millions of jobs: one range read of ix_jobs_status_updated_at (per
    finished status), never a pass over the table."""
    engine = create_engine_for(sql_url)
    try:
        async with engine.begin() as conn:
            found = await conn.run_sync(plan)
    finally:
        await engine.dispose()
    if "sqlite" in sql_url:
        assert "ix_jobs_status_updated_at" in found, found
    else:
        # On an empty table PostgreSQL's costs tie between the indexes that lead with
        # the status (updated_at, lease_expires_at), read as a plain or a bitmap index
        # scan: any is a range read of the finished jobs, never a pass over the table.
        status_led = r"(Index (Only )?Scan using|Bitmap Index Scan on) ix_jobs_status_\w+"
        assert re.search(status_led, found), found
        assert "Seq Scan" not in found, found
    assert not re.search(r"Seq Scan|SCAN jobs(?! USING)", found), found
