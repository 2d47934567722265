"""`workers`: no-op jobs claimed and completed per second by 4 `chute worker` processes on
PostgreSQL, against procrastinate running the same no-op jobs with 4 worker processes on
the same server (each in its own database) in the same run.

For each, in alternating rounds (`rounds`; each side's best counts): `enqueue_jobs` jobs
are enqueued into a database of their own (chute's `create_jobs` in batches of 1,000;
procrastinate's `batch_defer_async`; the rate of these calls, after each side's first,
is the enqueue figure: 19 timed calls, where the workers' 5,000 jobs gave 4, too few to
tell a side's rate from the noise), then `worker_jobs` jobs are made the same way, the
workers start, each running `worker_concurrency` jobs at once, and the clock runs
until the database says every job is done. Two rates: by the
wall clock from the workers' launch (their start-up included), and by the database's
own times from the first job started to the last one finished (the main figure:
start-up excluded).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.core import ROOT, Context, Figure, Target, recorded
from bench.neighbours import cpu_seconds
from bench.postgres import dsn, fresh_database
from bench.procs import base_env, chute, chute_env, migrate, stop
from bench.workers_setup import defer_chute, defer_procrastinate

CHUTE_DONE = "SELECT count(*) FROM jobs WHERE status = 'completed'"
CHUTE_SPAN = "SELECT min(started_at), max(finished_at) FROM jobs"
PROCRASTINATE_DONE = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
PROCRASTINATE_SPAN = (
    "SELECT min(at) FILTER (WHERE type = 'started'), max(at) FILTER (WHERE type = 'succeeded') "
    "FROM procrastinate_events"
)


def run(ctx: Context) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        recorded("workers", ctx) as data,
    ):
        folder, s = Path(tmp), ctx.sizes
        rounds = [
            {"chute": _chute(ctx, folder), "procrastinate": _procrastinate(ctx, folder)}
            for _ in range(s.rounds)
        ]
        data["rounds"] = rounds
        mine, theirs = _best(rounds, "chute"), _best(rounds, "procrastinate")
        setting = (
            f"{s.worker_processes} processes x {s.worker_concurrency}, {s.worker_jobs} jobs, "
            f"best of {s.rounds}"
        )
        figures = [
            *rate_figures("workers", mine, theirs, "procrastinate", 2.0, setting),
            Figure(
                "workers.enqueue_per_s",
                mine["defer_rate"],
                "jobs/s",
                theirs["defer_rate"],
                "procrastinate",
                Target("ratio", ">=", 1.0),
                note=f"create_jobs vs batch_defer_async, {s.enqueue_jobs:,} jobs 1,000 a call, "
                "after each one's first",
            ),
            Figure(
                "workers.cpu_per_job",
                mine["worker_cpu_ms_per_job"] + mine["database_cpu_ms_per_job"],
                "ms CPU/job",
                theirs["worker_cpu_ms_per_job"] + theirs["database_cpu_ms_per_job"],
                "procrastinate",
                note=f"workers {mine['worker_cpu_ms_per_job']:.2f} + PostgreSQL backends "
                f"{mine['database_cpu_ms_per_job']:.2f} (procrastinate "
                f"{theirs['worker_cpu_ms_per_job']:.2f} + "
                f"{theirs['database_cpu_ms_per_job']:.2f})",
            ),
        ]
        data["figures"] = figures
        return figures


def rate_figures(
    name: str,
    mine: dict[str, float],
    theirs: dict[str, float],
    baseline: str,
    ratio: float,
    setting: str,
) -> list[Figure]:
    """The jobs/s of `mine` against `theirs`: by the database's times (held to `ratio`),
    and by the wall clock from the workers' launch."""
    return [
        Figure(
            f"{name}.jobs_per_s",
            mine["db_rate"],
            "jobs/s",
            theirs["db_rate"],
            baseline,
            Target("ratio", ">=", ratio),
            note=f"{setting}; first start to last finish, by the database",
        ),
        Figure(
            f"{name}.jobs_per_s_wall",
            mine["wall_rate"],
            "jobs/s",
            theirs["wall_rate"],
            baseline,
            note="from the workers' launch, start-up included",
        ),
    ]


def _best(rounds: list[dict[str, Any]], side: str) -> dict[str, float]:
    """Each figure's best round (the rounds are alternated, so noise hits both sides)."""
    best = {
        rate: max(one[side][rate] or 0 for one in rounds)
        for rate in ("db_rate", "wall_rate", "defer_rate")
    }
    for cost in ("worker_cpu_ms_per_job", "database_cpu_ms_per_job"):
        best[cost] = min(one[side][cost] for one in rounds)
    return best


def _chute(ctx: Context, folder: Path) -> dict[str, Any]:
    s = ctx.sizes
    enqueue = asyncio.run(fresh_database(ctx.postgres(), "bench_enqueue_chute"))
    migrate(enqueue)
    asyncio.run(_fetch_row(dsn(enqueue), "CHECKPOINT"))  # no side pays for the last one's pages
    defer_rate = asyncio.run(defer_chute(enqueue, s.enqueue_jobs, folder))
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_workers_chute"))
    migrate(url)
    asyncio.run(defer_chute(url, s.worker_jobs, folder))
    argv = chute(
        "worker", "--processor", "bench.processors:noop", "--slots", str(s.worker_concurrency)
    )
    # A storage of its own: each round's database is a new one, with an id of its own,
    # and a storage belongs to one database.
    env = chute_env(url, Path(tempfile.mkdtemp(prefix="storage-", dir=folder)))
    measured = timed(
        folder,
        "chute",
        [argv] * s.worker_processes,
        env,
        dsn(url),
        CHUTE_DONE,
        CHUTE_SPAN,
        s.worker_jobs,
    )
    return {**measured, "defer_rate": defer_rate}


def _procrastinate(ctx: Context, folder: Path) -> dict[str, Any]:
    s = ctx.sizes
    enqueue = asyncio.run(fresh_database(ctx.postgres(), "bench_enqueue_procrastinate"))
    asyncio.run(_fetch_row(dsn(enqueue), "CHECKPOINT"))
    defer_rate = asyncio.run(defer_procrastinate(dsn(enqueue), s.enqueue_jobs))
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_workers_procrastinate"))
    asyncio.run(defer_procrastinate(dsn(url), s.worker_jobs))
    argv = [
        sys.executable,
        "-m",
        "procrastinate",
        "--app",
        "bench.procrastinate_app.app",
        "--log-level",
        "warning",
        "worker",
        "--concurrency",
        str(s.worker_concurrency),
    ]
    env = base_env(BENCH_PROCRASTINATE_DSN=dsn(url))
    measured = timed(
        folder,
        "procrastinate",
        [argv] * s.worker_processes,
        env,
        dsn(url),
        PROCRASTINATE_DONE,
        PROCRASTINATE_SPAN,
        s.worker_jobs,
    )
    return {**measured, "defer_rate": defer_rate}


def timed(
    folder: Path,
    name: str,
    argvs: list[list[str]],
    env: dict[str, str],
    database: str,
    done_sql: str,
    span_sql: str,
    jobs: int,
) -> dict[str, Any]:
    """Start the worker processes of `argvs` and wait until the database says `jobs` are
    done (`done_sql`); the rates, by the wall clock and by `span_sql`, and CPU per job."""
    # Dirty pages of what came before (the jobs just made, the benchmark before this one)
    # written now, so that no side's workers pay for a checkpoint they did not cause.
    asyncio.run(_fetch_row(database, "CHECKPOINT"))
    logs = [(folder / f"{name}-worker-{n}.log").open("wb") for n in range(len(argvs))]
    started, launched = time.monotonic(), time.time()
    processes = [
        subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for argv, log in zip(argvs, logs, strict=True)
    ]
    try:
        cpu = _Cpu([p.pid for p in processes], f" {make_url(database).database} ")
        wall = asyncio.run(_until_done(database, done_sql, jobs, started, processes, cpu))
        cpu.take(jobs)  # before the workers stop: their database sessions end with them
    finally:
        for process in processes:
            stop(process, grace=30)
        for log in logs:
            log.close()
    first, last = asyncio.run(_fetch_row(database, span_sql))
    span = (last - first).total_seconds()
    return {
        "wall_seconds": wall,
        "wall_rate": jobs / wall,
        "db_seconds": span,
        **cpu.per_job(),
        "db_rate": jobs / span if span > 0 else None,
        "first_start_after_launch": first.timestamp() - launched,
    }


class _Cpu:
    """CPU of the workers and of their database sessions, from the first job done to the
    last: start-up (imports, connecting) is left out, as in the main rate."""

    def __init__(self, pids: list[int], backends: str) -> None:
        self.pids, self.backends = pids, backends
        self.marks: list[tuple[int, float, float]] = []  # (jobs done, workers, database)

    def take(self, done: int) -> None:
        workers = cpu_seconds(self.pids)
        self.marks.append((done, workers, cpu_seconds([], command_part=self.backends)))

    def per_job(self) -> dict[str, float]:
        (first, workers, database), (last, workers_end, database_end) = (
            self.marks[0],
            self.marks[-1],
        )
        jobs = max(last - first, 1)
        return {
            "worker_cpu_ms_per_job": 1000 * (workers_end - workers) / jobs,
            "database_cpu_ms_per_job": 1000 * (database_end - database) / jobs,
        }


async def _until_done(
    database: str,
    sql: str,
    jobs: int,
    started: float,
    processes: list[subprocess.Popen[bytes]],
    cpu: _Cpu,
) -> float:
    conn = await asyncpg.connect(database)
    try:
        while (done := await conn.fetchval(sql)) < jobs:
            if done and not cpu.marks:
                cpu.take(done)
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a worker process exited early; see its log")
            if time.monotonic() - started > 600:
                raise TimeoutError(f"{jobs} jobs were not done in 600 s")
            await asyncio.sleep(0.05)
        return time.monotonic() - started
    finally:
        await conn.close()


async def _fetch_row(database: str, sql: str) -> Any:
    conn = await asyncpg.connect(database)
    try:
        return await conn.fetchrow(sql)
    finally:
        await conn.close()
