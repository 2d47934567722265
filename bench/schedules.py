"""`schedules`: how late a schedule's job is created after its tick.

Many schedules of `* * * * *` on one `chute serve` on SQLite, and on three `chute serve`
processes sharing one PostgreSQL (the servers race for each tick; one takes it). A
job's delay is its `created_at` past the whole minute of its tick. p50, p99 and the
worst delay over every job of the ticks; and `all_listed`, how long after the tick a
list (polled every 5 ms) first holds every job of it, which counts the commit too.
Reference of the same run and server: the p50
of one `POST /api/v1/jobs` (what one job costs when a client asks for it), so that a
busy machine shows in both.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from bench.core import Context, Figure, Target
from bench.postgres import fresh_database
from bench.procs import Server, chute_server, migrate
from bench.runs import get_json, request

URL_JOB = {"source_type": "url", "source_uri": "https://example.org/report.pdf", "queue": "ticks"}
CREATES = 50  # the reference: this many single creates, one after another


def run(ctx: Context) -> list[Figure]:
    schedules = ctx.sizes.schedules
    ticks = 2 if ctx.full else 1
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-schedules-") as tmp:
        folder = Path(tmp)
        with chute_server(
            folder, f"sqlite+aiosqlite:///{folder}/chute.db", folder / "files"
        ) as one:
            figures += measure("sqlite", [one], schedules, ticks)
        url = asyncio.run(fresh_database(ctx.postgres(), "bench_schedules"))
        migrate(url)
        with ExitStack() as stack:
            servers = [
                stack.enter_context(chute_server(folder, url, folder / "pg-files"))
                for _ in range(3)
            ]
            figures += measure("postgresql_3_servers", servers, schedules, ticks)
    return figures


def measure(label: str, servers: list[Server], schedules: int, ticks: int) -> list[Figure]:
    create_p50 = reference(servers[0])
    for n in range(schedules):
        body = json.dumps({"cron": "* * * * *", "job": URL_JOB}).encode()
        status, answer = request(servers[n % len(servers)], "PUT", f"/api/v1/schedules/s{n}", body)
        if status != 201:
            raise RuntimeError(f"PUT schedule: {status} {answer[:300]!r}")
    print(f"   {label}: {schedules} schedules, waiting for {ticks} tick(s)", flush=True)
    visible = [all_visible(servers[-1], schedules * (n + 1)) for n in range(ticks)]
    delays = sorted(tick_delays(servers[0]))
    expected = schedules * ticks
    if len(delays) != expected:
        raise RuntimeError(f"{label}: {len(delays)} scheduled jobs, expected {expected}")
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
    note = f"{schedules} schedules x {ticks} tick(s) on {len(servers)} server(s)"
    ref = "POST /api/v1/jobs p50"
    seen = max(visible)
    return [
        Figure(
            f"schedules.{label}.all_listed",
            seen,
            "ms",
            create_p50,
            ref,
            note=f"the tick until a list (polled every 5 ms) holds every job of it; {note}",
        ),
        Figure(f"schedules.{label}.delay_p50", p50, "ms", create_p50, ref, note=note),
        Figure(
            f"schedules.{label}.delay_p99",
            p99,
            "ms",
            create_p50,
            ref,
            target=Target("value", "<=", 1000),
            note=note,
        ),
        Figure(f"schedules.{label}.delay_max", delays[-1], "ms", create_p50, ref, note=note),
    ]


def reference(server: Server) -> float:
    """The p50 of single creates on `server`, in ms (a warm-up create first)."""
    body = json.dumps(URL_JOB | {"queue": "reference"}).encode()  # not in `ticks`
    request(server, "POST", "/api/v1/jobs", body)
    times = []
    for _ in range(CREATES):
        started = time.perf_counter()
        status, _ = request(server, "POST", "/api/v1/jobs", body)
        times.append((time.perf_counter() - started) * 1000)
        if status != 201:
            raise RuntimeError(f"POST /api/v1/jobs: {status}")
    return statistics.median(times)


def all_visible(server: Server, expected: int) -> float:
    """Wait for the next whole minute, then poll the list of the schedules' queue until
    it counts `expected` jobs: how long after the tick that took, in ms."""
    now = datetime.now(UTC)
    tick = now.replace(second=0, microsecond=0).timestamp() + 60
    time.sleep(max(0.0, tick - now.timestamp() - 0.5))
    deadline = tick + 30
    while time.time() < deadline:
        page = get_json(server, "/api/v1/jobs?queue=ticks&limit=1")
        if page["total"] >= expected:
            return max(0.0, (time.time() - tick) * 1000)
        time.sleep(0.005)
    raise RuntimeError(f"{expected} scheduled jobs not listed within 30 s of the tick")


def tick_delays(server: Server) -> list[float]:
    """The delay of each scheduled job, in ms: its creation past its tick's minute."""
    delays, cursor = [], None
    while True:
        target = "/api/v1/jobs?count=false&limit=200&sort=created_at"
        page = get_json(server, target + (f"&cursor={cursor}" if cursor else ""))
        for job in page["items"]:
            if job["schedule"] is not None:
                created = datetime.fromisoformat(job["created_at"])
                delays.append((created.second + created.microsecond / 1e6) * 1000)
        cursor = page["next_cursor"]
        if cursor is None:
            return delays
