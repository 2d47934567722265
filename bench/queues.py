"""`queues`: what a queue's concurrency limit costs the workers that claim, on PostgreSQL
and SQLite.

Two figures a database, each the same workload twice in one run, the two sides in
rounds that alternate which goes first (`limit_cost`: twice `rounds`, as its target is
close to the rounds' spread; `other_queue`: `rounds`; each side's best counts), each on a
fresh database with a `chute serve` on it (the queue settings are changed through its
HTTP API, as an operator would, before the workers start):

- `limit_cost`: `queue_jobs` no-op jobs in queue `q`, claimed and completed by
  `worker_processes` `chute worker` processes of `worker_concurrency` slots, claiming
  from every queue; once with no limit (the baseline), once with
  `PATCH /api/v1/queues/q {"concurrency_limit": L}`, L ten times the workers' slots:
  every claim then takes the lock of q's settings and counts its held jobs, but the limit
  never binds, so the ratio is the cost of the mechanism (target >= 0.9).
- `other_queue`: `queue_jobs` jobs of queue `other` while queue `q` holds a backlog of as
  many and is limited to 1 (the workers claim from every queue, so each claim also looks
  at q and finds it full), against the same `other` jobs with no `q` at all. A limit must
  not make claiming slow for the other queues. The workers also run q's jobs, one at a
  time, while they drain `other` (as they should: the limit caps q, it does not stop
  it), so the figure counts the jobs of both queues that finished while `other` was
  drained; `other`'s own rate is in the note.

Rates as in `workers`: by the database's own times, from the first job of the measured
queue started to its last finished (the workers' start-up is left out), and by the wall
clock from the workers' launch.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.core import ROOT, Context, Figure, Target, recorded
from bench.postgres import dsn, fresh_database
from bench.procs import Server, chute, chute_env, chute_server, migrate, stop
from bench.runs import request

DATABASES = ("postgres", "sqlite")
BATCH = 1000  # jobs a POST /api/v1/jobs/batch
TIMEOUT = 300.0
DONE = "SELECT count(*) FROM jobs WHERE queue = {q} AND status = 'completed'"
SPAN = "SELECT min(started_at), max(finished_at) FROM jobs WHERE queue = {q}"
AT_LEAST_09 = Target("ratio", ">=", 0.9)
LIMIT_SIDES = ("unlimited", "limited")
OTHER_SIDES = ("other_alone", "other_beside_q")


def run(ctx: Context) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        recorded("queues", ctx) as data,
    ):
        folder, s = Path(tmp), ctx.sizes
        slots = s.worker_processes * s.worker_concurrency
        limit = 10 * slots
        results: dict[str, Any] = data.setdefault("results", {})
        figures = []
        sides: dict[str, tuple[str, dict[str, int]]] = {  # (measured queue, limits)
            "unlimited": ("q", {}),
            "limited": ("q", {"q": limit}),
            "other_alone": ("other", {}),
            "other_beside_q": ("other", {"q": 1}),
        }
        for database in DATABASES:
            print(f"   {database}", flush=True)
            limit_rounds = _alternated(ctx, folder, database, sides, LIMIT_SIDES, 2 * s.rounds)
            other_rounds = _alternated(ctx, folder, database, sides, OTHER_SIDES, s.rounds)
            results[database] = {"limit_cost": limit_rounds, "other_queue": other_rounds}
            best = {side: _best(limit_rounds, side) for side in LIMIT_SIDES}
            best |= {side: _best(other_rounds, side) for side in OTHER_SIDES}
            setting = (
                f"{s.queue_jobs} jobs, {s.worker_processes} processes x {s.worker_concurrency}"
            )
            figures += [
                Figure(
                    f"queues.{database}.limit_cost",
                    best["limited"]["db_rate"],
                    "jobs/s",
                    best["unlimited"]["db_rate"],
                    "no limit",
                    AT_LEAST_09,
                    note=f"q limited to {limit} (never binds); {setting}, best of "
                    f"{len(limit_rounds)}; by round "
                    f"{_by_round(limit_rounds, 'limited', 'unlimited')}; "
                    f"from launch {best['limited']['wall_rate']:.0f} vs "
                    f"{best['unlimited']['wall_rate']:.0f} jobs/s",
                ),
                Figure(
                    f"queues.{database}.other_queue",
                    best["other_beside_q"]["all_rate"],
                    "jobs/s",
                    best["other_alone"]["db_rate"],
                    "other alone",
                    note=f"`other` and q's jobs while q (backlog {s.queue_jobs}) is limited to "
                    f"1; {setting}, best of {len(other_rounds)}; `other` alone "
                    f"{best['other_beside_q']['db_rate']:.0f} jobs/s, by round "
                    f"{_by_round(other_rounds, 'other_beside_q', 'other_alone')}; q jobs done "
                    f"meanwhile: {max(r['other_beside_q']['q_done'] for r in other_rounds)}",
                ),
            ]
        data["figures"] = figures
        return figures


def _alternated(
    ctx: Context,
    folder: Path,
    database: str,
    sides: dict[str, tuple[str, dict[str, int]]],
    pair: tuple[str, str],
    count: int,
) -> list[dict[str, Any]]:
    """`count` rounds of the two sides of `pair`, in turn first (AB, BA, AB, ...): a side
    that always ran second (after a database was dropped and another made) ran slower
    by a few percent."""
    rounds = []
    for n in range(count):
        order = pair if n % 2 == 0 else pair[::-1]
        rounds.append({side: _measured(ctx, folder, database, *sides[side]) for side in order})
    return rounds


def _by_round(rounds: list[dict[str, Any]], side: str, baseline: str) -> str:
    """The ratio of each round: the sides of one round ran a few seconds apart."""
    ratios = [r[side]["db_rate"] / r[baseline]["db_rate"] for r in rounds]
    return " ".join(f"{ratio:.2f}" for ratio in ratios)


def _best(rounds: list[dict[str, Any]], side: str) -> dict[str, float]:
    rates = ("db_rate", "wall_rate", "all_rate")
    return {rate: max(r[side].get(rate) or 0 for r in rounds) for rate in rates}


def _measured(
    ctx: Context, folder: Path, database: str, measured: str, limits: dict[str, int]
) -> dict[str, Any]:
    """`queue_jobs` jobs of queue `measured` (and as many of `q` first, when `q` is not
    the measured one but is limited), the `limits` set, then the workers until every job
    of `measured` is done."""
    s = ctx.sizes
    url, reader = _fresh(ctx, folder, database)
    storage = Path(tempfile.mkdtemp(prefix="storage-", dir=folder))
    with chute_server(folder, url, storage) as server:
        if measured != "q" and "q" in limits:
            _create(server, "q", s.queue_jobs)  # the backlog, older than the measured jobs
        _create(server, measured, s.queue_jobs)
        for name, limit in limits.items():
            _limit(server, name, limit)
        argv = chute(
            "worker", "--processor", "bench.processors:noop", "--slots", str(s.worker_concurrency)
        )
        env = chute_env(url, storage)
        result = _timed(folder, [argv] * s.worker_processes, env, reader, measured, s.queue_jobs)
        if measured != "q":
            # q's jobs that finished while `measured` was drained (its first start to its
            # last end), the work the workers did beside it.
            first, last = reader.row(SPAN, measured)
            result["q_done"] = reader.count_finished_between("q", first, last)
            done = s.queue_jobs + result["q_done"]
            result["all_rate"] = done / result["db_seconds"] if result["db_seconds"] else None
        return result


def _fresh(ctx: Context, folder: Path, database: str) -> tuple[str, Reader]:
    if database == "sqlite":
        path = Path(tempfile.mkstemp(prefix="queues-", suffix=".db", dir=folder)[1])
        path.unlink()
        url = f"sqlite+aiosqlite:///{path}"
        migrate(url)
        return url, Reader(sqlite=str(path))
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_queues"))
    migrate(url)
    return url, Reader(postgres=dsn(url))


def _create(server: Server, queue: str, count: int) -> None:
    for first in range(0, count, BATCH):
        jobs = [
            {"source_type": "url", "source_uri": f"https://example.org/{queue}/{n}", "queue": queue}
            for n in range(first, min(first + BATCH, count))
        ]
        status, body = request(
            server, "POST", "/api/v1/jobs/batch", json.dumps({"jobs": jobs}).encode()
        )
        if status != 201:
            raise RuntimeError(f"POST /api/v1/jobs/batch: {status} {body[:300]!r}")


def _limit(server: Server, queue: str, limit: int) -> None:
    target = f"/api/v1/queues/{queue}"
    status, body = request(
        server, "PATCH", target, json.dumps({"concurrency_limit": limit}).encode()
    )
    if status != 200 or json.loads(body)["concurrency_limit"] != limit:
        raise RuntimeError(f"PATCH {target}: {status} {body[:300]!r}")


class Reader:
    """Queries on the run's database, on one connection kept open while the workers run
    (psycopg for PostgreSQL, in autocommit; sqlite3 beside the workers)."""

    def __init__(self, *, postgres: str | None = None, sqlite: str | None = None) -> None:
        self.postgres, self.sqlite = postgres, sqlite
        self._conn: Any = None

    def __enter__(self) -> Reader:
        if self.sqlite:
            self._conn = sqlite3.connect(self.sqlite, timeout=30, isolation_level=None)
        else:
            import psycopg  # the `bench` extra, as procrastinate's driver

            self._conn = psycopg.connect(self.postgres or "", autocommit=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
        self._conn = None

    def row(self, sql: str, queue: str) -> tuple[Any, ...]:
        if self._conn is None:
            with self:
                return self.row(sql, queue)
        mark = "?" if self.sqlite else "%s"
        return tuple(self._conn.execute(sql.format(q=mark), (queue,)).fetchone())

    def value(self, sql: str, queue: str) -> Any:
        return self.row(sql, queue)[0]

    def count_finished_between(self, queue: str, first: Any, last: Any) -> int:
        """Jobs of `queue` that finished from `first` to `last` (as SPAN read them)."""
        mark = "?" if self.sqlite else "%s"
        sql = (
            f"SELECT count(*) FROM jobs WHERE queue = {mark} "
            f"AND finished_at BETWEEN {mark} AND {mark}"
        )
        with self:
            return int(self._conn.execute(sql, (queue, first, last)).fetchone()[0])


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # SQLite's naive UTC text


def _timed(
    folder: Path,
    argvs: list[list[str]],
    env: dict[str, str],
    reader: Reader,
    queue: str,
    jobs: int,
) -> dict[str, Any]:
    logs = [(folder / f"queues-worker-{n}.log").open("wb") for n in range(len(argvs))]
    started = time.monotonic()
    processes = [
        subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for argv, log in zip(argvs, logs, strict=True)
    ]
    try:
        with reader:
            while reader.value(DONE, queue) < jobs:
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"a worker process exited early; see {logs[0].name}")
                if time.monotonic() - started > TIMEOUT:
                    raise TimeoutError(f"{jobs} jobs of {queue} were not done in {TIMEOUT:.0f} s")
                time.sleep(0.05)
        wall = time.monotonic() - started
    finally:
        for process in processes:
            stop(process, grace=30)
        for log in logs:
            log.close()
    first, last = (_moment(v) for v in reader.row(SPAN, queue))
    span = (last - first).total_seconds()
    return {
        "wall_seconds": wall,
        "wall_rate": jobs / wall,
        "db_seconds": span,
        "db_rate": jobs / span if span > 0 else None,
    }
