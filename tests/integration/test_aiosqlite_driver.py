"""The one-trip aiosqlite driver (`chute.adapters.sqlalchemy.aiosqlite_driver`) on a
real SQLite file: a statement's rows and counts as the DBAPI gives them, errors as
SQLAlchemy's, and one trip to aiosqlite's thread a statement."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.sqlalchemy.aiosqlite_driver import OneTripCursor
from chute.application.queries import JobFilter, JobQuery
from chute.domain import JobStatus
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.factories import make_job, sqlite_url


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_for(sqlite_url(tmp_path / "t.db"))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The functions sent to aiosqlite's thread, by name, as they are sent."""
    sent: list[str] = []
    original = aiosqlite.core.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    yield sent


async def test_the_engine_runs_statements_on_one_trip_cursors(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection.cursor(), OneTripCursor)  # type: ignore[union-attr]


async def test_rows_counts_and_last_row_ids_are_the_statements(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        assert many.rowcount == 2
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
        assert updated.rowcount == 2
        rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
        assert [tuple(row) for row in rows] == [(1, "a"), (2, "b!"), (3, "c!")]
        returned = await conn.execute(text("DELETE FROM t WHERE id = 3 RETURNING name"))
        assert returned.scalar_one() == "c!"
        assert (await conn.execute(text("SELECT name FROM t WHERE id = 9"))).first() is None


async def test_a_failing_statement_raises_sqlalchemys_error_and_the_connection_goes_on(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (name TEXT UNIQUE)"))
        await conn.execute(text("INSERT INTO t VALUES ('a')"))
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t VALUES ('a')"))
        with pytest.raises(exc.OperationalError):
            await conn.execute(text("SELECT nothing FROM nowhere"))
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one() == 1


async def test_a_page_of_jobs_takes_one_trip_a_statement(
    sqlite_template: Path, tmp_path: Path, trips: list[str]
) -> None:
    path = tmp_path / "chute.db"
    shutil.copyfile(sqlite_template, path)
    db = SqlDatabase(create_engine_for(sqlite_url(path)))
    try:
        async with db() as uow:
            await uow.jobs.add([make_job() for _ in range(3)])
            await uow.commit()
        for _ in range(2):  # the second time on the pooled connection
            trips.clear()
            async with db(read_only=True) as uow:
                page = await uow.jobs.find(JobQuery(filter=JobFilter(), limit=50))
                total = await uow.jobs.count(JobFilter(statuses=frozenset({JobStatus.PENDING})))
            assert (len(page), total) == (3, 3)
            # BEGIN, the page, the count, and the rollback that closing makes: SQLAlchemy's
            # own cursor made four trips a statement (13 in all).
            assert trips == ["_run", "_run", "_run", "rollback"]
    finally:
        await db.dispose()
