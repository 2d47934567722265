"""Async engines tuned for chute's two databases."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
from chute.adapters.sqlalchemy.aiosqlite_driver import one_trip_dbapi
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

READ_ONLY = "chute_read_only"
"""Execution option: the connection's transactions only read (plain `BEGIN` on SQLite)."""

# Bounds on waiting for PostgreSQL, so that a database that is away or frozen gives
# ServiceUnavailable (503) in seconds rather than requests that hang.
CONNECT_TIMEOUT_SECONDS = 5  # asyncpg's connect, TLS and start-up included (default 60)
COMMAND_TIMEOUT_SECONDS = 30  # any one statement (default: none)
POOL_TIMEOUT_SECONDS = 10  # a free connection of the pool (default 30)

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",  # first, so that switching to WAL waits for a busy file
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


_LONG_NUMBER = re.compile(r"[0-9]{19}")


def json_loads(text: str) -> Any:
    """`json.loads`, by orjson where it reads the same value (1.6 times as fast on a
    small object, regular expression included).

    orjson reads an integer past 64 bits as a float, and refuses NaN, Infinity and lone
    surrogates, which `json.loads` takes: a text with 19 digits in a row, or one orjson
    refuses, is read by `json.loads` instead.
    """
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def create_engine_for(
    url: str | URL, *, command_timeout: float | None = COMMAND_TIMEOUT_SECONDS
) -> AsyncEngine:
    """An async engine for a `sqlite+aiosqlite` or `postgresql+asyncpg` URL.

    `command_timeout` bounds each PostgreSQL statement; None for work that may take
    long on purpose (migrations that build indexes on big tables).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed, command_timeout)
    raise ValueError(f"chute supports SQLite and PostgreSQL, not {parsed.drivername!r}")


def is_memory_sqlite(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def ensure_sqlite_folder(url: str | URL) -> None:
    """Create the folder of a SQLite database file when it is missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not is_memory_sqlite(parsed):
        assert parsed.database is not None
        if not parsed.database.startswith("file:"):  # URI filenames are left as given
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_engine(url: URL) -> AsyncEngine:
    # The DBAPI module: one trip to aiosqlite's thread a statement, where SQLAlchemy's
    # adapter makes four (aiosqlite_driver.py).
    options: dict[str, Any] = {"module": one_trip_dbapi(), "json_deserializer": json_loads}
    if is_memory_sqlite(url):
        # One connection holds the whole database; a second would see another, empty one.
        options["poolclass"] = StaticPool
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
    return engine


def sqlite_sync_engine(url: str | URL) -> Engine | None:
    """A blocking engine on the same SQLite file, set up as the async one (its pragmas,
    BEGIN IMMEDIATE), for work run whole in a thread; None for an in-memory database,
    which no second connection could see."""
    parsed = make_url(url)
    if is_memory_sqlite(parsed) or (parsed.database or "").startswith("file:"):
        return None
    engine = create_engine(parsed.set(drivername="sqlite"))
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver (it would defer it to the first write and
    # skip it for DDL); `_on_sqlite_begin` emits the right one instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    # when another writer got there first; BEGIN IMMEDIATE takes the write lock up
    # front and waits for it (busy_timeout). Readers need no lock in WAL mode.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _postgresql_engine(url: URL, command_timeout: float | None) -> AsyncEngine:
    # No pool_pre_ping: it cost a round trip at every checkout, one in three of a
    # worker's statements. A pooled connection that a restart of the server broke fails
    # its first statement instead; SQLAlchemy then sees a disconnect and invalidates the
    # whole pool, so that one unit of work answers ServiceUnavailable and the next ones
    # connect afresh (tests/e2e/test_faults_postgres.py).
    return create_async_engine(
        url,
        json_deserializer=json_loads,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "timeout": CONNECT_TIMEOUT_SECONDS,
            "command_timeout": command_timeout,
            "prepared_statement_cache_size": 256,
            # After five runs asyncpg's prepared statements switch to a generic plan,
            # which made deep OFFSET pages 4x slower; plan each run for its values.
            "server_settings": {
                "plan_cache_mode": "force_custom_plan",
                "application_name": "chute",
            },
        },
    )
