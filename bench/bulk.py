"""Many jobs loaded straight into the database, not through the API.

SQLite: SQLAlchemy Core executemany on chute's own table objects (so values are
stored exactly as chute stores them), 50,000 rows a transaction. PostgreSQL: COPY
(asyncpg's binary copy), then VACUUM ANALYZE as autovacuum would soon do. SQLite is
not analysed: chute never runs ANALYZE on its embedded database.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import asyncpg
from chute.adapters.sqlalchemy import upgrade
from chute.adapters.sqlalchemy.tables import detection_results, jobs
from sqlalchemy import create_engine

from bench.data import job_rows
from bench.postgres import dsn

CHUNK = 50_000

# (jobs row, detection_results row or None) for `count` jobs: `job_rows` or another.
Rows = Callable[[int], Iterator[tuple[dict[str, Any], dict[str, Any] | None]]]


def _chunks(count: int, made: Rows) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    rows = made(count)
    while chunk := list(itertools.islice(rows, CHUNK)):
        yield [job for job, _ in chunk], [found for _, found in chunk if found is not None]


def load_sqlite(path: str, count: int, rows: Rows = job_rows) -> float:
    """Migrate a new SQLite file at `path` and load `count` jobs; the seconds it took."""
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    started = time.monotonic()
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=OFF")  # loading only; chute sets its own
        for job_chunk, detection_chunk in _chunks(count, rows):
            with engine.begin() as conn:
                conn.execute(jobs.insert(), job_chunk)
                if detection_chunk:
                    conn.execute(detection_results.insert(), detection_chunk)
    finally:
        engine.dispose()
    return time.monotonic() - started


async def load_postgres(url: str, count: int, rows: Rows = job_rows) -> float:
    """Migrate the (empty) database at `url` and COPY `count` jobs in; the seconds it took."""
    await upgrade(url)
    started = time.monotonic()
    conn = await asyncpg.connect(dsn(url))
    try:
        for job_chunk, detection_chunk in _chunks(count, rows):
            await _copy(conn, "jobs", job_chunk)
            if detection_chunk:
                await _copy(conn, "detection_results", detection_chunk)
        await conn.execute("VACUUM ANALYZE jobs, detection_results")
    finally:
        await conn.close()
    return time.monotonic() - started


async def _copy(conn: asyncpg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    await conn.copy_records_to_table(table, records=_records(rows, columns), columns=columns)


def _records(rows: Iterable[dict[str, Any]], columns: list[str]) -> list[tuple[Any, ...]]:
    # asyncpg's jsonb codec takes JSON text.
    def value(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict) else v

    return [tuple(value(row[c]) for c in columns) for row in rows]
