"""Alembic owns the schema: its migrations build exactly `tables.metadata`, and undo it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from chute.adapters.sqlalchemy import create_engine_for, downgrade, upgrade
from chute.adapters.sqlalchemy.tables import metadata
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url

from tests.pg import create_database, drop_database

CHUTE_TABLES = {"jobs", "detection_results", "idempotency_keys"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with nothing in it (for SQLite, in a folder not yet made)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'chute.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = await create_database(server)
    yield url
    await drop_database(server, str(make_url(url).database))


def differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def on(url: str, check: Any) -> Any:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(check)
    finally:
        await engine.dispose()


async def test_upgrade_builds_the_schema_of_tables_py_and_downgrade_removes_it(
    empty_url: str,
) -> None:
    await upgrade(empty_url)
    assert await on(empty_url, differences) == []

    await downgrade(empty_url, "base")
    assert not await on(empty_url, table_names) & CHUTE_TABLES

    await upgrade(empty_url)
    assert await on(empty_url, differences) == []
    await upgrade(empty_url)  # at head already: nothing to do
