"""What every test tier shares: the session's throw-away PostgreSQL server and S3-compatible
object store (each started once, on first use) and a migrated SQLite file to copy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from chute.adapters.sqlalchemy import upgrade
from sqlalchemy.engine import make_url

from tests.factories import sqlite_url
from tests.pg import PostgresUnavailable, create_database, drop_database, postgres_server
from tests.s3 import S3Server, SeaweedUnavailable, seaweedfs_server


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


@pytest.fixture
async def fresh_postgres_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the test server for one test, dropped after it: for
    tests whose processes migrate and share it."""
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's SeaweedFS, with its bucket made and authentication on."""
    try:
        with seaweedfs_server() as server:
            yield server
    except SeaweedUnavailable as e:
        pytest.fail(str(e), pytrace=False)
