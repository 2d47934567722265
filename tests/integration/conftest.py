"""Real databases for the integration tests: SQLite files and a throw-away PostgreSQL.

`database` runs a test once per storage adapter (in memory, SQLite, PostgreSQL), so
that one contract holds them all to the same behaviour. PostgreSQL is never skipped:
when it cannot start, the tests that need it fail with the server's log.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from chute.adapters.memory import MemoryDatabase
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.application.ports import UnitOfWorkFactory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.pg import PostgresUnavailable, create_database, drop_database, postgres_server

TABLES = ("idempotency_keys", "job_events", "detection_results", "jobs")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """The URL of the test server's `postgres` database (to create others from)."""
    try:
        with postgres_server() as url:
            yield url
    except PostgresUnavailable as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
async def postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server, for the whole session."""
    url = await create_database(postgres_server_url)
    yield url
    await drop_database(postgres_server_url, str(make_url(url).database))


@pytest.fixture(scope="session")
async def migrated_postgres_url(postgres_url: str) -> str:
    await upgrade(postgres_url)
    return postgres_url


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies: cheaper than migrating per test."""
    path = tmp_path_factory.mktemp("sqlite-template") / "chute.db"
    await upgrade(sqlite_url(path))
    # Disposing the migration's engine checkpoints the WAL into the main file.
    assert not path.with_name("chute.db-wal").exists()
    return path


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
