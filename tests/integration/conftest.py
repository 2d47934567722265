"""Real databases for the integration tests: SQLite files and a throw-away PostgreSQL.

`database` runs a test once per storage adapter (in memory, SQLite, PostgreSQL), so
that one contract holds them all to the same behaviour. PostgreSQL is never skipped:
when it cannot start, the tests that need it fail with the server's log.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from chute.adapters.detection import AutoDetector, LibmagicDetector, MagikaDetector
from chute.adapters.memory import MemoryDatabase
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.application.ports import ContentDetector, UnitOfWorkFactory
from chute.domain import Mode
from sqlalchemy import text

from tests.factories import sqlite_url

TABLES = (
    "idempotency_keys",
    "job_events",
    "detection_results",
    "jobs",
    "queues",
    "schedules",
    "webhooks",
    "webhook_deliveries",
)


def migrated_url(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> str:
    """The URL of a migrated database: a fresh SQLite file, or the session's PostgreSQL
    database (not emptied here: see `empty_tables`)."""
    if kind == "sqlite":
        path = tmp_path / "chute.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return sqlite_url(path)
    return str(request.getfixturevalue("migrated_postgres_url"))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The URL of a migrated database of the parametrised kind; None for memory."""
    if request.param == "memory":
        return None
    return migrated_url(request, tmp_path, request.param)


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return migrated_url(request, tmp_path, request.param)


async def empty_tables(db: SqlDatabase) -> None:
    """On PostgreSQL, where one database serves the session, start from empty tables."""
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))


@pytest.fixture
async def sql_url(sql_database_url: str) -> str:
    """The URL of a migrated, empty SQLite file or PostgreSQL database, for tests that
    open it more than once (each `SqlDatabase` on it is one more client)."""
    db = SqlDatabase(create_engine_for(sql_database_url))
    try:
        await empty_tables(db)
    finally:
        await db.dispose()
    return sql_database_url


@pytest.fixture
async def database(database_url: str | None) -> AsyncIterator[UnitOfWorkFactory]:
    """An empty database behind the storage ports: in memory, SQLite, or PostgreSQL."""
    if database_url is None:
        yield MemoryDatabase()
        return
    db = SqlDatabase(create_engine_for(database_url))
    try:
        await empty_tables(db)
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def detectors() -> dict[Mode, ContentDetector]:
    """The real detectors by mode, as `chute worker` has them (Magika loads once)."""
    libmagic, magika = LibmagicDetector(), MagikaDetector()
    return {Mode.FAST: libmagic, Mode.ACCURATE: magika, Mode.AUTO: AutoDetector(libmagic, magika)}


@pytest.fixture
async def sql_database(sql_url: str) -> AsyncIterator[SqlDatabase]:
    """The SQL adapter on `sql_url`'s database (SQLite, then PostgreSQL)."""
    db = SqlDatabase(create_engine_for(sql_url))
    try:
        yield db
    finally:
        await db.dispose()
