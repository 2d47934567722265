"""Async engines tuned for chute's two databases, and the one place driver errors are read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chute.application.errors import ServiceUnavailable
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

READ_ONLY = "chute_read_only"
"""Execution option: the connection's transactions only read (plain `BEGIN` on SQLite)."""

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",  # first, so that switching to WAL waits for a busy file
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def create_engine_for(url: str | URL) -> AsyncEngine:
    """An async engine for a `sqlite+aiosqlite` or `postgresql+asyncpg` URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        return _postgresql_engine(parsed)
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
    options: dict[str, Any] = {}
    if is_memory_sqlite(url):
        # One connection holds the whole database; a second would see another, empty one.
        options["poolclass"] = StaticPool
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
    event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
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


def _postgresql_engine(url: URL) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        connect_args={
            "prepared_statement_cache_size": 256,
            # After five runs asyncpg's prepared statements switch to a generic plan,
            # which made deep OFFSET pages 4x slower; plan each run for its values.
            "server_settings": {
                "plan_cache_mode": "force_custom_plan",
                "application_name": "chute",
            },
        },
    )


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn 'the database cannot be reached' into `ServiceUnavailable`, whatever the driver."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as e:
        raise ServiceUnavailable(f"the database cannot be reached: {type(e.orig).__name__}") from e
    except exc.DBAPIError as e:
        if e.connection_invalidated:
            raise ServiceUnavailable("the database connection was lost") from e
        raise
    except (exc.TimeoutError, OSError) as e:  # OSError covers TimeoutError and refusals
        raise ServiceUnavailable(f"the database cannot be reached: {type(e).__name__}") from e
