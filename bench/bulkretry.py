"""`bulkretry`: `POST /api/v1/jobs/retry` by filter over `retry_jobs` failed jobs, on
SQLite and PostgreSQL, against the same change made by raw SQL through the driver.

Each side, in alternating rounds (`rounds`; each side's best counts), starts from a fresh
database holding `retry_jobs` failed jobs (the rows of `job_rows`, each made a job that
failed its last attempt: attempts = max_attempts = 3, an error, started and finished),
loaded by `bench/bulk.py`.

- chute: a `chute serve` on it, and `{"filter": {"status": ["failed"]}, "limit": 1000}`
  posted again while the answer says `more`; the clock runs over the calls only.
- raw SQL (the baseline): the driver itself (asyncpg; the sqlite3 module with chute's
  pragmas), in transactions of 1,000 jobs: one UPDATE of the 1,000 oldest failed jobs
  (pending, max_attempts raised to allow one more attempt, run_after and finished_at
  cleared) returning their ids, then one INSERT of an event a job (failed -> pending,
  actor `client`), as chute records them.

Both sides are checked afterwards: every job pending with max_attempts 4 and no
finished_at, and one `failed -> pending` event of the client per job.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.bulk import load_postgres, load_sqlite
from bench.core import Context, Figure, recorded
from bench.data import job_rows
from bench.postgres import dsn, fresh_database
from bench.procs import chute_server
from bench.runs import request

DATABASES = ("sqlite", "postgres")
LIMIT = 1000  # jobs a call, and a raw transaction
BODY = json.dumps({"filter": {"status": ["failed"]}, "limit": LIMIT}).encode()
SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # chute's SQLite datetime text (naive UTC)

RETRIED = (
    "status = 'pending', updated_at = {now}, max_attempts = {greatest}(max_attempts, "
    "attempts + 1), run_after = NULL, finished_at = NULL, worker_id = NULL, "
    "lease_expires_at = NULL"
)
OLDEST_FAILED = f"SELECT id FROM jobs WHERE status = 'failed' ORDER BY created_at, id LIMIT {LIMIT}"
PG_UPDATE = (
    f"WITH picked AS ({OLDEST_FAILED} FOR UPDATE) "
    f"UPDATE jobs SET {RETRIED.format(now='$1', greatest='GREATEST')} "
    "FROM picked WHERE jobs.id = picked.id RETURNING jobs.id"
)
PG_EVENTS = (
    "INSERT INTO job_events (job_id, at, from_status, to_status, actor) "
    "SELECT unnest($1::uuid[]), $2, 'failed', 'pending', 'client'"
)
SQLITE_UPDATE = (
    f"UPDATE jobs SET {RETRIED.format(now='?', greatest='max')} "
    f"WHERE id IN ({OLDEST_FAILED}) RETURNING id"
)
SQLITE_EVENTS = (
    "INSERT INTO job_events (job_id, at, from_status, to_status, actor) "
    "VALUES (?, ?, 'failed', 'pending', 'client')"
)
SQLITE_PRAGMAS = ("busy_timeout=5000", "journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON")
CHECK = (
    "SELECT count(*) FILTER (WHERE status = 'pending'), "
    "count(*) FILTER (WHERE max_attempts = 4 AND finished_at IS NULL AND run_after IS NULL), "
    "(SELECT count(*) FROM job_events "
    " WHERE from_status = 'failed' AND to_status = 'pending' AND actor = 'client'), "
    "count(*) FROM jobs"
)


def failed_rows(count: int) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """`job_rows`, each made a job that failed its last attempt."""
    for row, detection in job_rows(count):
        started = row["created_at"] + timedelta(seconds=2)
        finished = started + timedelta(seconds=3)
        row.update(
            status="failed",
            attempts=3,
            max_attempts=3,
            last_error="HTTPError: 404 Not Found",
            worker_id=None,
            lease_seconds=None,
            lease_expires_at=None,
            run_after=None,
            started_at=started,
            finished_at=finished,
            updated_at=finished,
            progress=None,
            progress_message=None,
            result=None,
        )
        yield row, detection


def run(ctx: Context) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        recorded("bulkretry", ctx) as data,
    ):
        folder, s = Path(tmp), ctx.sizes
        results: dict[str, Any] = data.setdefault("results", {})
        figures = []
        for database in DATABASES:
            print(f"   {database}", flush=True)
            rounds = [
                {"chute": _chute(ctx, folder, database), "raw": _raw(ctx, folder, database)}
                for _ in range(s.rounds)
            ]
            results[database] = rounds
            mine = max(r["chute"]["rate"] for r in rounds)
            theirs = max(r["raw"]["rate"] for r in rounds)
            calls = rounds[0]["chute"]["calls"]
            figures.append(
                Figure(
                    f"bulkretry.{database}.jobs_per_s",
                    mine,
                    "jobs/s",
                    theirs,
                    "raw SQL",
                    note=f"{s.retry_jobs} failed jobs, {calls} calls of limit {LIMIT} "
                    f"(raw: UPDATE + INSERT, {LIMIT} a transaction); best of {s.rounds}",
                )
            )
        data["figures"] = figures
        return figures


def _loaded(ctx: Context, folder: Path, database: str) -> tuple[str, float]:
    """A fresh database of `retry_jobs` failed jobs: its URL, and the loading's seconds."""
    count = ctx.sizes.retry_jobs
    if database == "sqlite":
        path = Path(tempfile.mkstemp(prefix="retry-", suffix=".db", dir=folder)[1])
        path.unlink()
        return f"sqlite+aiosqlite:///{path}", load_sqlite(str(path), count, failed_rows)
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_bulkretry"))
    return url, asyncio.run(load_postgres(url, count, failed_rows))


def _chute(ctx: Context, folder: Path, database: str) -> dict[str, Any]:
    url, load_seconds = _loaded(ctx, folder, database)
    storage = Path(tempfile.mkdtemp(prefix="storage-", dir=folder))
    calls, changed, more = 0, 0, True
    with chute_server(folder, url, storage) as server:
        started = time.perf_counter()
        while more:
            status, body = request(server, "POST", "/api/v1/jobs/retry", BODY)
            if status != 200:
                raise RuntimeError(f"POST /api/v1/jobs/retry: {status} {body[:300]!r}")
            outcome = json.loads(body)
            calls, changed, more = calls + 1, changed + outcome["changed"], outcome["more"]
        seconds = time.perf_counter() - started
    _check(url, ctx.sizes.retry_jobs, changed)
    return _result(ctx, seconds, load_seconds, calls=calls)


def _raw(ctx: Context, folder: Path, database: str) -> dict[str, Any]:
    url, load_seconds = _loaded(ctx, folder, database)
    if database == "sqlite":
        seconds, changed = _raw_sqlite(_sqlite_path(url))
    else:
        seconds, changed = asyncio.run(_raw_postgres(dsn(url)))
    _check(url, ctx.sizes.retry_jobs, changed)
    return _result(ctx, seconds, load_seconds)


def _result(ctx: Context, seconds: float, load_seconds: float, **more: Any) -> dict[str, Any]:
    count = ctx.sizes.retry_jobs
    return {"seconds": seconds, "rate": count / seconds, "load_seconds": load_seconds, **more}


async def _raw_postgres(database: str) -> tuple[float, int]:
    conn = await asyncpg.connect(database)
    changed = 0
    try:
        started = time.perf_counter()
        while True:
            async with conn.transaction():
                now = datetime.now(UTC)
                ids = [row[0] for row in await conn.fetch(PG_UPDATE, now)]
                if ids:
                    await conn.execute(PG_EVENTS, ids, now)
            changed += len(ids)
            if len(ids) < LIMIT:
                return time.perf_counter() - started, changed
    finally:
        await conn.close()


def _raw_sqlite(path: str) -> tuple[float, int]:
    conn = sqlite3.connect(path, isolation_level=None)  # transactions as written below
    changed = 0
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        while True:
            conn.execute("BEGIN IMMEDIATE")
            now = datetime.now(UTC).strftime(SQLITE_TIME)
            ids = [row[0] for row in conn.execute(SQLITE_UPDATE, (now,)).fetchall()]
            conn.executemany(SQLITE_EVENTS, [(job_id, now) for job_id in ids])
            conn.execute("COMMIT")
            changed += len(ids)
            if len(ids) < LIMIT:
                return time.perf_counter() - started, changed
    finally:
        conn.close()


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite+aiosqlite:///")


def _check(url: str, count: int, changed: int) -> None:
    """Every job retried once, with its event: or the figure is not of the same work."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(_sqlite_path(url))
        try:
            found = tuple(conn.execute(CHECK).fetchone())
        finally:
            conn.close()
    else:
        found = tuple(asyncio.run(_pg_row(dsn(url), CHECK)))
    if found != (count,) * 4 or changed != count:
        raise RuntimeError(
            f"retry of {count} jobs: {changed} changed; (pending, retried rows, events, jobs) "
            f"= {found}"
        )


async def _pg_row(database: str, sql: str) -> Any:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetchrow(sql)
    finally:
        await conn.close()
