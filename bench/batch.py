"""`batch`: POST /api/v1/jobs/batch with 1,000 jobs a request into SQLite and PostgreSQL:
jobs/s.

Baseline: the no-op app parsing the same batch (`BatchCreateRequest`) and sending a
canned answer of the same size (the 1,000 jobs chute made for the same body). The three
servers are loaded in turn for `rounds` rounds; each one's best run counts. chute runs at
the default log level (INFO), as users run it.

The last figures are the ceilings of each database's own part: the rows chute wrote for
one request (1,000 jobs and their events), written again under new ids into a fresh
database of chute's schema (its indexes; on SQLite its pragmas), 1,000 jobs a
transaction, from this process: by the sqlite3 module alone (as many rows a statement
as SQLite takes), and by asyncpg's COPY alone. No HTTP, no Python objects: what the
database costs a job, which no server on it can beat.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
from chute.adapters.sqlalchemy.engine import SQLITE_PRAGMAS
from chute.adapters.sqlalchemy.group_commit import MAX_ROWS_PER_INSERT
from chute.adapters.system import UuidV7Generator

from bench.core import Context, Figure, Target, recorded
from bench.data import batch_body
from bench.load import LoadResult
from bench.postgres import dsn, fresh_database
from bench.procs import Server, chute_server, migrate, noop_server
from bench.runs import capture, posted

PATH = "/api/v1/jobs/batch"
JOBS = 1000
TARGETS = {"sqlite": 50_000, "postgres": 30_000}  # jobs/s (issue 16)
CEILING_BATCHES = 20  # transactions of 1,000 jobs, after one to warm up
CEILINGS = {"sqlite": "sqlite3 alone", "postgres": "asyncpg COPY alone"}


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("batch", ctx) as data:
        folder = Path(tmp)
        body = batch_body(JOBS)
        sqlite_file = folder / "chute.db"
        sqlite_url = f"sqlite+aiosqlite:///{sqlite_file}"
        postgres_url = asyncio.run(fresh_database(ctx.postgres(), "bench_batch"))
        migrate(postgres_url)
        with ExitStack() as servers:
            sqlite = servers.enter_context(
                chute_server(folder, sqlite_url, folder / "storage", log_level="INFO")
            )
            postgres = servers.enter_context(
                chute_server(folder, postgres_url, folder / "storage-pg", log_level="INFO")
            )
            answer = capture(sqlite, folder / "canned", "POST", PATH, body)
            data.update(request_bytes=len(body), response_bytes=len(answer))
            noop = servers.enter_context(noop_server(folder, folder / "canned"))
            targets = {"noop": noop, "sqlite": sqlite, "postgres": postgres}
            rounds = [
                {
                    name: _load(ctx, server, folder, body, n == 0 and name != "noop", name)
                    for name, server in targets.items()
                }
                for n in range(ctx.sizes.rounds)
            ]
        ceilings = {
            "sqlite": _sqlite_ceiling(sqlite_file, folder / "ceiling.db"),
            "postgres": asyncio.run(_postgres_ceiling(ctx, postgres_url)),
        }
        data["rounds"] = [{name: r.as_json() for name, r in one.items()} for one in rounds]
        data["ceilings_jobs_per_s"] = ceilings
        best = {name: max((one[name] for one in rounds), key=lambda r: r.rps) for name in rounds[0]}
        figures = _figures(ctx, best, ceilings)
        data["figures"] = figures
        return figures


def _figures(ctx: Context, best: dict[str, LoadResult], ceilings: dict[str, float]) -> list[Figure]:
    noop, rounds = best["noop"], ctx.sizes.rounds
    figures = []
    for name in ("sqlite", "postgres"):
        result = best[name]
        figures += [
            Figure(
                f"batch.{name}.jobs_per_s",
                result.rps * JOBS,
                "jobs/s",
                noop.rps * JOBS,
                "no-op",
                Target("value", ">=", TARGETS[name]),
                note=f"best of {rounds} rounds, each side its best",
            ),
            Figure(
                f"batch.{name}.p50",
                result.p50_ms,
                "ms",
                noop.p50_ms,
                "no-op p50",
                note=f"{JOBS} jobs a request, {ctx.sizes.batch_connections} connections",
            ),
            Figure(
                f"batch.{name}.cpu",
                (result.cpu_ms_per_request or 0) * 1000 / JOBS,
                "us CPU/job",
                (noop.cpu_ms_per_request or 0) * 1000 / JOBS,
                "no-op",
                note="the server process's CPU per job"
                + ("; PostgreSQL's own not counted" if name == "postgres" else ""),
            ),
        ]
    for name, how in CEILINGS.items():
        figures.append(
            Figure(
                f"batch.{name}.ceiling",
                best[name].rps * JOBS,
                "jobs/s",
                ceilings[name],
                how,
                note=f"the same rows by {how}, {JOBS} jobs a transaction",
            )
        )
    return figures


def _load(
    ctx: Context, server: Server, folder: Path, body: bytes, profiled: bool, name: str
) -> LoadResult:
    connections = ctx.sizes.batch_connections
    profile = f"batch-{name}" if profiled else None
    return posted(ctx, server, PATH, folder, body, connections=connections, profile=profile)


def _sqlite_ceiling(written: Path, fresh: Path) -> float:
    """Jobs a second of the sqlite3 module alone writing the rows of one of chute's
    requests (its 1,000 jobs and their events) again and again under new ids."""
    migrate(f"sqlite+aiosqlite:///{fresh}")
    source = sqlite3.connect(written)
    try:
        jobs, job_columns = _rows(source, f"SELECT * FROM jobs ORDER BY created_at LIMIT {JOBS}")
        ids = [row[job_columns.index("id")] for row in jobs]
        marks = ",".join("?" * len(ids))
        events, event_columns = _rows(
            source, f"SELECT * FROM job_events WHERE job_id IN ({marks}) ORDER BY id", ids
        )
    finally:
        source.close()
    # The rowid of each event: SQLite numbers them.
    keep = [n for n, name in enumerate(event_columns) if name != "id"]
    events = [tuple(row[n] for n in keep) for row in events]
    event_columns = [event_columns[n] for n in keep]
    job_at, event_at = job_columns.index("id"), event_columns.index("job_id")
    conn = sqlite3.connect(fresh, isolation_level=None)
    try:
        for pragma in SQLITE_PRAGMAS:
            conn.execute(pragma)
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        started, new_ids = 0.0, UuidV7Generator()
        for batch in range(CEILING_BATCHES + 1):
            if batch == 1:
                started = time.perf_counter()
            new = {old: new_ids.new_id().hex for old in ids}  # in creation order, as chute's
            conn.execute("BEGIN IMMEDIATE")
            _insert(conn, "jobs", job_columns, _renamed(jobs, job_at, new), limit)
            _insert(conn, "job_events", event_columns, _renamed(events, event_at, new), limit)
            conn.execute("COMMIT")
        return CEILING_BATCHES * len(jobs) / (time.perf_counter() - started)
    finally:
        conn.close()


async def _postgres_ceiling(ctx: Context, written_url: str) -> float:
    """Jobs a second of asyncpg alone copying the rows of one of chute's requests (its
    1,000 jobs and their events) again and again under new ids, by COPY (the fastest way
    in) into a fresh database of chute's schema."""
    fresh_url = await fresh_database(ctx.postgres(), "bench_batch_ceiling")
    await asyncio.to_thread(migrate, fresh_url)
    source = await asyncpg.connect(dsn(written_url))
    try:
        jobs = await source.fetch(f"SELECT * FROM jobs ORDER BY created_at LIMIT {JOBS}")
        ids = [row["id"] for row in jobs]
        events = await source.fetch(
            "SELECT * FROM job_events WHERE job_id = ANY($1) ORDER BY id", ids
        )
    finally:
        await source.close()
    job_columns = list(jobs[0].keys())
    event_columns = [name for name in events[0].keys() if name not in ("id", "tx")]
    conn = await asyncpg.connect(dsn(fresh_url))
    try:
        started, new_ids = 0.0, UuidV7Generator()
        for batch in range(CEILING_BATCHES + 1):
            if batch == 1:
                started = time.perf_counter()
            new = {old: new_ids.new_id() for old in ids}
            job_rows = [
                tuple(new[row[c]] if c == "id" else row[c] for c in job_columns) for row in jobs
            ]
            event_rows = [
                tuple(new[row[c]] if c == "job_id" else row[c] for c in event_columns)
                for row in events
            ]
            async with conn.transaction():
                await conn.copy_records_to_table("jobs", records=job_rows, columns=job_columns)
                await conn.copy_records_to_table(
                    "job_events", records=event_rows, columns=event_columns
                )
        return CEILING_BATCHES * len(jobs) / (time.perf_counter() - started)
    finally:
        await conn.close()


def _rows(
    conn: sqlite3.Connection, sql: str, params: list[Any] | None = None
) -> tuple[list[tuple[Any, ...]], list[str]]:
    cursor = conn.execute(sql, params or [])
    return cursor.fetchall(), [d[0] for d in cursor.description]


def _renamed(rows: list[tuple[Any, ...]], at: int, new: dict[Any, Any]) -> list[tuple[Any, ...]]:
    return [(*row[:at], new[row[at]], *row[at + 1 :]) for row in rows]


def _insert(
    conn: sqlite3.Connection,
    table: str,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    limit: int,
) -> None:
    per = max(1, min(MAX_ROWS_PER_INSERT, limit // len(columns)))
    row = "(" + ",".join("?" * len(columns)) + ")"
    head = f"INSERT INTO {table} ({','.join(columns)}) VALUES "
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(head + ",".join([row] * len(chunk)), [v for r in chunk for v in r])
