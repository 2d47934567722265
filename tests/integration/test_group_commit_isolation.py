"""One unit of a group commit that cannot be written fails alone: the others of its group
commit, on SQLite and on PostgreSQL, whatever went wrong with it (a value the driver
cannot encode or bind, one the database refuses, a caller cancelled). Only the database
being away fails a whole group.

The committer is driven with rows that cannot be stored, past the validation that
refuses such input first, so that the isolation is proven on its own.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.sqlalchemy import group_commit as group_commit_module
from chute.adapters.sqlalchemy.errors import UNSTORABLE_VALUE
from chute.adapters.sqlalchemy.group_commit import Insert, Outcome
from chute.application import FieldError, ServiceUnavailable, ValidationFailed
from chute.domain import Job
from sqlalchemy import exc

from tests.factories import make_job
from tests.integration.test_group_commit import add_jobs, stored

INNOCENTS = 8


class Turnstile:
    """Holds each group the committer writes until `let_through()`; `arrived` gives the
    size of each group as it reaches the turnstile."""

    def __init__(self, database: SqlDatabase) -> None:
        committer = database.committer
        assert committer is not None
        self.arrived: asyncio.Queue[int] = asyncio.Queue()
        self._passes = asyncio.Semaphore(0)
        write = committer._write

        async def held(units: list[list[Insert]]) -> list[Outcome]:
            await self.arrived.put(len(units))
            await self._passes.acquire()
            return await write(units)

        committer._write = held

    def let_through(self) -> None:
        self._passes.release()

    async def next_group(self) -> int:
        return await asyncio.wait_for(self.arrived.get(), 10)


@pytest.fixture
def database(sql_database: SqlDatabase) -> SqlDatabase:
    return sql_database  # the SQL adapter only: what is tested is its transactions


async def handed_over(database: SqlDatabase, count: int) -> None:
    """Wait until `count` units wait in the committer's queue (each task needs a few
    turns of the loop to get there)."""
    assert database.committer is not None
    async with asyncio.timeout(10):
        while len(database.committer._queue) < count:
            await asyncio.sleep(0.001)


class Group:
    """A plug held at the turnstile, then innocent units and one more queued behind it,
    so that the next group holds them all."""

    def __init__(self, database: SqlDatabase) -> None:
        self.database = database
        self.turnstile = Turnstile(database)
        self.innocents = [make_job() for _ in range(INNOCENTS)]
        self.plug = make_job()
        self.tasks: list[asyncio.Task[None]] = []

    async def queue(self, unit: list[Job]) -> asyncio.Task[None]:
        """Queue the innocents with `unit` amid them; return `unit`'s task."""
        self.tasks.append(asyncio.create_task(add_jobs(self.database, self.plug)))
        assert await self.turnstile.next_group() == 1
        half = INNOCENTS // 2
        for job in self.innocents[:half]:
            self.tasks.append(asyncio.create_task(add_jobs(self.database, job)))
        odd_one = asyncio.create_task(add_jobs(self.database, *unit))
        for job in self.innocents[half:]:
            self.tasks.append(asyncio.create_task(add_jobs(self.database, job)))
        await handed_over(self.database, INNOCENTS + 1)
        return odd_one

    async def write(self, size: int = INNOCENTS + 1) -> None:
        """Let the plug's group through, then the next one, which must be of `size`."""
        self.turnstile.let_through()
        assert await self.turnstile.next_group() == size
        self.turnstile.let_through()
        await asyncio.gather(*self.tasks)

    async def innocents_stored(self) -> None:
        ids = {job.id for job in [self.plug, *self.innocents]}
        assert await stored(self.database, *ids) == ids


# -- rows that cannot be written --------------------------------------------------------

BadJob = Callable[[], Job]

# Refused by both databases: the driver cannot encode or bind the value.
ON_EVERY_DATABASE: dict[str, tuple[BadJob, type[Exception], str | None]] = {
    "surrogate-in-text": (
        lambda: make_job(source_uri="https://example.org/\ud800"),
        ValidationFailed,
        "source_uri",
    ),
    "integer-past-64-bits": (lambda: make_job(file_size=2**64), ValidationFailed, "file_size"),
    # A bind processor's own failure: not the input's fault, so its own error (a 500).
    "json-that-does-not-serialise": (lambda: make_job(metadata={"set": {1}}), TypeError, None),
    "naive-time": (lambda: make_job(created_at=datetime(2026, 1, 1)), ValueError, None),
}
# Refused by PostgreSQL only (SQLite stores them; validation refuses them first on both).
ON_POSTGRESQL: dict[str, tuple[BadJob, type[Exception], str | None]] = {
    "nul-in-text": (lambda: make_job(file_name="a\x00b"), ValidationFailed, "file_name"),
    "nul-in-json": (lambda: make_job(metadata={"k": "\x00"}), ValidationFailed, "metadata"),
    "surrogate-in-json": (lambda: make_job(metadata={"\ud800": 1}), ValidationFailed, "metadata"),
    "text-past-its-column": (
        lambda: make_job(mime_type="a/" + "b" * 300),
        ValidationFailed,
        "mime_type",
    ),
}


async def assert_fails_alone(
    database: SqlDatabase, bad: BadJob, expected: type[Exception], column: str | None
) -> None:
    group = Group(database)
    first, culprit = make_job(), bad()  # one unit: a good job, then the bad one
    odd_one = await group.queue([first, culprit])

    await group.write()

    with pytest.raises(expected) as raised:
        await odd_one
    if column is not None:
        assert isinstance(raised.value, ValidationFailed)
        assert raised.value.errors == [FieldError((column,), UNSTORABLE_VALUE)]
    await group.innocents_stored()
    assert await stored(database, first.id, culprit.id) == set()  # none of its rows stay


@pytest.mark.parametrize("case", ON_EVERY_DATABASE)
async def test_a_row_the_driver_cannot_write_fails_only_its_own_unit(
    database: SqlDatabase, case: str
) -> None:
    await assert_fails_alone(database, *ON_EVERY_DATABASE[case])


@pytest.mark.parametrize("case", ON_POSTGRESQL)
async def test_a_row_postgresql_refuses_fails_only_its_own_unit(
    migrated_postgres_url: str, case: str
) -> None:
    database = SqlDatabase(create_engine_for(migrated_postgres_url))
    try:
        await assert_fails_alone(database, *ON_POSTGRESQL[case])
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "case", [name for name, (_, _, column) in ON_EVERY_DATABASE.items() if column]
)
async def test_a_unit_outside_group_commit_gets_the_same_validation_error(
    database: SqlDatabase, case: str
) -> None:
    bad, _, column = ON_EVERY_DATABASE[case]
    for deferred in (False, True):  # its own transaction; or one begun by a later write
        job = bad()
        with pytest.raises(ValidationFailed) as raised:
            async with database(deferred=deferred) as uow:
                await uow.jobs.add([job])
                await uow.jobs.get(job.id, for_update=True)  # writes what it held back
                await uow.commit()
        assert raised.value.errors == [FieldError((column,), UNSTORABLE_VALUE)]
        assert await stored(database, job.id) == set()


async def test_several_bad_units_each_fail_with_their_own_error(database: SqlDatabase) -> None:
    existing = make_job()
    await add_jobs(database, existing)
    group = Group(database)
    surrogate = make_job(source_uri="https://example.org/\udfff")
    taken = await group.queue([make_job(id=existing.id)])
    bad = asyncio.create_task(add_jobs(database, surrogate))
    await handed_over(database, INNOCENTS + 2)

    await group.write(INNOCENTS + 2)

    with pytest.raises(ValueError, match="does an id exist already"):
        await taken
    with pytest.raises(ValidationFailed):
        await bad
    await group.innocents_stored()


# -- the database away ------------------------------------------------------------------


async def test_the_database_away_fails_the_whole_group_each_caller_with_its_own_error(
    database: SqlDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    marked = make_job()
    write = group_commit_module._execute_insert

    def locked(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
        if any(row.get("id") == marked.id for row in rows):
            locked_out = sqlite3.OperationalError("database is locked")
            raise exc.OperationalError("INSERT INTO jobs", {}, locked_out)
        write(conn, table, rows)

    monkeypatch.setattr(group_commit_module, "_execute_insert", locked)
    group = Group(database)
    odd_one = await group.queue([marked])
    group.turnstile.let_through()  # the plug's group
    assert await group.turnstile.next_group() == INNOCENTS + 1
    group.turnstile.let_through()

    plug, *errors = await asyncio.gather(*group.tasks, odd_one, return_exceptions=True)
    assert plug is None
    assert all(isinstance(error, ServiceUnavailable) for error in errors), errors
    assert len({id(error) for error in errors}) == len(errors)  # one object per caller
    ids = [job.id for job in [*group.innocents, marked]]
    assert await stored(database, *ids) == set()
    group.turnstile.let_through()  # the committer goes on once the database is back
    monkeypatch.undo()
    later = make_job()
    await add_jobs(database, later)
    assert await stored(database, later.id) == {later.id}


# -- callers cancelled ------------------------------------------------------------------


async def test_a_caller_cancelled_while_waiting_leaves_its_group_to_commit(
    database: SqlDatabase,
) -> None:
    group = Group(database)
    victim = make_job()
    cancelled = await group.queue([victim])
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    await group.write(INNOCENTS)  # its rows were dropped before its group began

    await group.innocents_stored()
    assert await stored(database, victim.id) == set()


async def test_a_caller_cancelled_while_its_group_is_written_leaves_the_group_committed(
    database: SqlDatabase,
) -> None:
    group = Group(database)
    victim = make_job()
    cancelled = await group.queue([victim])
    group.turnstile.let_through()  # the plug's group
    assert await group.turnstile.next_group() == INNOCENTS + 1  # its group has begun
    cancelled.cancel()
    group.turnstile.let_through()

    await asyncio.gather(*group.tasks)
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    await group.innocents_stored()
    # As a transaction whose COMMIT was sent before the cancellation: committed.
    assert await stored(database, victim.id) == {victim.id}
