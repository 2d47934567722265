"""`remote`: no-op jobs claimed and completed per second by `chute worker --server`
processes, over HTTP through one `chute serve`, against the same number of in-process
`chute worker` processes on the same PostgreSQL server, in the same run.

Both sides run the same no-op processor with the same slots on the same number of jobs,
made ahead (`create_jobs`, 1,000 a call) in a fresh database each, in alternating
rounds; each side's best round counts. The remote workers' environment has no database
setting at all: every claim and every completion is a request to the server. The rate
is by the database's own times, first start to last finish (start-up excluded), as in
`workers`. CPU per job is the workers' own, the PostgreSQL sessions', and for the remote
side the server's too.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.core import Context, Figure, recorded
from bench.postgres import dsn, fresh_database
from bench.procs import base_env, chute, chute_env, chute_server, migrate
from bench.profiling import profiled
from bench.workers import CHUTE_DONE, CHUTE_SPAN, rate_figures, timed
from bench.workers_setup import defer_chute

SIDES = ("local", "remote")
PROFILE_SECONDS = 20


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("remote", ctx) as data:
        folder, s = Path(tmp), ctx.sizes
        rounds = [
            {side: _round(ctx, folder, side, profile=ctx.profile and not n) for side in SIDES}
            for n in range(s.rounds)
        ]
        data["rounds"] = rounds
        local, remote = (_best(rounds, side) for side in SIDES)
        setting = (
            f"{s.worker_processes} processes x {s.worker_concurrency}, {s.worker_jobs} no-op "
            f"jobs, best of {s.rounds}"
        )
        figures = [
            *rate_figures("remote", remote, local, "in-process workers", 0.5, setting),
            Figure(
                "remote.cpu_per_job",
                remote["cpu_ms_per_job"],
                "ms CPU/job",
                local["cpu_ms_per_job"],
                "in-process workers",
                note=f"remote: workers {remote['worker_cpu_ms_per_job']:.2f} + server "
                f"{remote['server_cpu_ms_per_job']:.2f} + PostgreSQL "
                f"{remote['database_cpu_ms_per_job']:.2f} (requests per job: claims "
                f"{remote['claim_requests_per_job']:.2f}, completions "
                f"{remote['complete_requests_per_job']:.2f}); in-process: workers "
                f"{local['worker_cpu_ms_per_job']:.2f} + PostgreSQL "
                f"{local['database_cpu_ms_per_job']:.2f}",
            ),
        ]
        data["figures"] = figures
        return figures


def _best(rounds: list[dict[str, Any]], side: str) -> dict[str, float]:
    """Each figure's best round (the rounds alternate, so noise hits both sides)."""
    best = {rate: max(one[side][rate] or 0 for one in rounds) for rate in ("db_rate", "wall_rate")}
    costs = ("worker_cpu_ms_per_job", "database_cpu_ms_per_job", "server_cpu_ms_per_job")
    for cost in (*costs, "claim_requests_per_job", "complete_requests_per_job"):
        best[cost] = min(one[side].get(cost, 0.0) for one in rounds)
    best["cpu_ms_per_job"] = min(sum(one[side].get(cost, 0.0) for cost in costs) for one in rounds)
    return best


def _round(ctx: Context, folder: Path, side: str, *, profile: bool) -> dict[str, Any]:
    s = ctx.sizes
    url = asyncio.run(fresh_database(ctx.postgres(), f"bench_remote_{side}"))
    migrate(url)
    asyncio.run(defer_chute(url, s.worker_jobs, folder))
    # A storage of its own: each round's database is a new one, and a storage belongs
    # to one database.
    storage = Path(tempfile.mkdtemp(prefix="storage-", dir=folder))
    options = ("--processor", "bench.processors:noop", "--slots", str(s.worker_concurrency))
    processes = s.worker_processes
    if side == "local":
        argv = chute("worker", *options)
        env = chute_env(url, storage)
        return timed(
            folder, side, [argv] * processes, env, dsn(url), CHUTE_DONE, CHUTE_SPAN, s.worker_jobs
        )
    with chute_server(folder, url, storage) as server:
        argv = chute("worker", "--server", server.url, *options)
        env = base_env(CHUTE_LOG_LEVEL="WARNING", CHUTE_LOG_FORMAT="json")  # no database
        before = server.cpu_seconds()
        # --profile: the server of the first round, from the workers' launch on.
        with profiled(server.process.pid, "remote-server", PROFILE_SECONDS, enabled=profile):
            measured = timed(
                folder,
                side,
                [argv] * processes,
                env,
                dsn(url),
                CHUTE_DONE,
                CHUTE_SPAN,
                s.worker_jobs,
            )
        # The server's CPU from the workers' launch to their stop: start-up included,
        # so a little more than the jobs' share.
        server_ms = 1000 * (server.cpu_seconds() - before) / s.worker_jobs
        requests = _requests_per_job(server.url, s.worker_jobs)
    return {**measured, "server_cpu_ms_per_job": server_ms, **requests}


def _requests_per_job(url: str, jobs: int) -> dict[str, float]:
    """Claim and completion requests per job, by the server's own request counters."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counts = {"claim": 0.0, "complete": 0.0}
    for route, count in _REQUESTS.findall(text):
        kind = "claim" if route.endswith("/claim") else "complete"
        counts[kind] += float(count)
    return {f"{kind}_requests_per_job": n / jobs for kind, n in counts.items()}


_REQUESTS = re.compile(
    r'^chute_http_requests_total\{method="POST",route="(/api/v1/jobs/(?:claim|complete|'
    r'\{job_id\}/complete))",status="200"\} (\S+)$',
    re.MULTILINE,
)
