"""`s3ingest`: s3 jobs ingested per second by one `chute worker` process (the built-in
`ingest` processor, `worker_concurrency` slots) on SQLite and a storage folder, against a
plain loop of obstore gets of the same objects, as many at once, in the same run.

SeaweedFS runs as the tests run it (tests/s3.py: `weed mini`, authentication on).
`s3_objects` small objects (4 KiB of text) are put once. Each round (`rounds`; each
side's best counts) measures the baseline first: tasks in this process get every
object and read its body whole, through one obstore client. Then chute: a fresh SQLite
file holds one `s3` job per object (mode `fast`: libmagic, so that detection, which has
its own benchmark, stays small), a worker starts, and the clock runs until every job has
completed. Two rates, as in `workers`: by the database's own times from the first job
started to the last finished (the main figure: start-up excluded), and by the wall clock
from the worker's launch. CPU per object: the worker process from its first completed
job to its last, against this process over the baseline's loop.

What a job costs beyond the get: its claim, lease check, content and completion in
SQLite (four write transactions, fsynced; completions group committed), the file
written, fsynced and renamed into the storage folder, a detection, and the job's
events. No target yet: the figures are the reference later changes are held to.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import obstore
from chute.adapters.s3 import S3Connection
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.application import NewJob
from chute.domain import Mode, SourceType
from obstore.store import S3Store

from bench.core import ROOT, Context, Figure, recorded
from bench.neighbours import cpu_seconds
from bench.procs import chute, chute_env, stop, tail
from tests.factories import make_engine, sqlite_url
from tests.s3 import S3Server, seaweedfs_server

OBJECT_BYTES = 4096
PREFIX = "bench-s3ingest"


def run(ctx: Context) -> list[Figure]:
    s = ctx.sizes
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        seaweedfs_server() as server,
        recorded("s3ingest", ctx) as data,
    ):
        keys = asyncio.run(_put_objects(server, s.s3_objects))
        rounds = []
        for n in range(s.rounds):
            plain = asyncio.run(_plain_gets(server, keys, s.worker_concurrency))
            ingested = _chute(server, keys, Path(tmp) / f"round-{n}", s.worker_concurrency)
            rounds.append({"obstore": plain, "chute": ingested})
            print(
                f"   round {n + 1}: chute {ingested['db_rate']:.0f} jobs/s, "
                f"obstore gets {plain['rate']:.0f}/s",
                flush=True,
            )
        data["rounds"] = rounds
        figures = _figures(rounds, s.s3_objects, s.worker_concurrency)
        data["figures"] = figures
        return figures


def _figures(rounds: list[dict[str, Any]], objects: int, slots: int) -> list[Figure]:
    mine = {k: max(r["chute"][k] for r in rounds) for k in ("db_rate", "wall_rate")}
    mine["cpu_ms"] = min(r["chute"]["cpu_ms_per_job"] for r in rounds)
    theirs = {"rate": max(r["obstore"]["rate"] for r in rounds)}
    theirs["cpu_ms"] = min(r["obstore"]["cpu_ms_per_get"] for r in rounds)
    setting = f"{objects} objects of {OBJECT_BYTES} B, {slots} at once, best of {len(rounds)}"
    return [
        Figure(
            "s3ingest.jobs_per_s",
            mine["db_rate"],
            "jobs/s",
            theirs["rate"],
            "obstore gets",
            note=f"{setting}; first start to last finish, by the database",
        ),
        Figure(
            "s3ingest.jobs_per_s_wall",
            mine["wall_rate"],
            "jobs/s",
            theirs["rate"],
            "obstore gets",
            note="from the worker's launch, start-up included",
        ),
        Figure(
            "s3ingest.cpu_per_job",
            mine["cpu_ms"],
            "ms CPU/job",
            theirs["cpu_ms"],
            "obstore gets",
            note="the worker process, against this process's get loop",
        ),
    ]


def _bucket(server: S3Server) -> S3Store:
    return S3Connection.from_env(server.env()).bucket(server.bucket)


async def _put_objects(server: S3Server, count: int) -> list[str]:
    store, slots = _bucket(server), asyncio.Semaphore(16)
    keys = [f"{PREFIX}/{n:05}.txt" for n in range(count)]

    async def put(n: int, key: str) -> None:
        line = f"object {n} of the s3 ingest benchmark\n".encode()
        async with slots:
            await obstore.put_async(store, key, (line * (OBJECT_BYTES // len(line) + 1))[:4096])

    await asyncio.gather(*(put(n, key) for n, key in enumerate(keys)))
    return keys


async def _plain_gets(server: S3Server, keys: list[str], concurrency: int) -> dict[str, Any]:
    """Every object read whole by `concurrency` tasks sharing one client: the baseline."""
    store, pending = _bucket(server), iter(keys)
    received = 0

    async def loop() -> None:
        nonlocal received
        for key in pending:
            result = await obstore.get_async(store, key)
            async for chunk in result.stream(min_chunk_size=1024 * 1024):
                received += len(chunk)

    cpu, started = time.process_time(), time.monotonic()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    assert received == len(keys) * OBJECT_BYTES
    return {
        "seconds": seconds,
        "rate": len(keys) / seconds,
        "cpu_ms_per_get": 1000 * cpu / len(keys),
    }


def _chute(server: S3Server, keys: list[str], folder: Path, slots: int) -> dict[str, Any]:
    folder.mkdir()
    path = folder / "chute.db"
    asyncio.run(_create_jobs(sqlite_url(path), server.bucket, keys))
    env = chute_env(sqlite_url(path), folder / "storage") | server.env()
    env |= {"CHUTE_WORKER_POLL_SECONDS": "0.05", "CHUTE_MAX_UPLOAD_BYTES": str(1024 * 1024)}
    log = folder / "worker.log"
    started, launched = time.monotonic(), time.time()
    with log.open("wb") as out:
        process = subprocess.Popen(
            chute("worker", "--slots", str(slots)),
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        (done_at_mark, cpu_at_mark), wall = _until_done(path, len(keys), process, log, started)
        cpu_at_end = cpu_seconds([process.pid])
    finally:
        stop(process, grace=30)
    if process.returncode != 0:
        raise RuntimeError(f"chute worker exited {process.returncode}:\n{tail(log)}")
    first, last, done_first = _span(path)
    span = (last - first).total_seconds()
    return {
        "wall_seconds": wall,
        "wall_rate": len(keys) / wall,
        "db_seconds": span,
        "db_rate": len(keys) / span,
        "cpu_ms_per_job": 1000 * (cpu_at_end - cpu_at_mark) / max(len(keys) - done_at_mark, 1),
        "first_start_after_launch": first.timestamp() - launched,
        "first_finish_after_first_start": (done_first - first).total_seconds(),
    }


async def _create_jobs(url: str, bucket: str, keys: list[str]) -> None:
    await upgrade(url)
    database = SqlDatabase(create_engine_for(url))
    engine = make_engine(uow=database)
    try:
        for start in range(0, len(keys), 1000):
            jobs = [
                NewJob(source_type=SourceType.S3, source_uri=f"s3://{bucket}/{key}", mode=Mode.FAST)
                for key in keys[start : start + 1000]
            ]
            await engine.create_jobs(jobs)
    finally:
        await database.dispose()


def _until_done(
    path: Path, jobs: int, process: subprocess.Popen[bytes], log: Path, started: float
) -> tuple[tuple[int, float], float]:
    """Wait for every job to complete; the (jobs done, worker CPU) at the first one done,
    and the wall seconds from the launch."""
    first: tuple[int, float] | None = None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        while True:
            counts = dict(conn.execute("SELECT status, count(*) FROM jobs GROUP BY status"))
            done = counts.get("completed", 0)
            if done and first is None:
                first = (done, cpu_seconds([process.pid]))
            if done == jobs:
                return first or (0, 0.0), time.monotonic() - started
            if counts.get("failed") or process.poll() is not None:
                raise RuntimeError(f"jobs {counts}, worker {process.poll()}:\n{tail(log)}")
            if time.monotonic() - started > 600:
                raise TimeoutError(f"{jobs} s3 jobs were not done in 600 s")
            time.sleep(0.05)


def _span(path: Path) -> tuple[datetime, datetime, datetime]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT min(started_at), max(finished_at), min(finished_at) FROM jobs"
        ).fetchone()
    first_start, last_finish, first_finish = (
        datetime.fromisoformat(value).replace(tzinfo=UTC)
        for value in row  # naive UTC text
    )
    return first_start, last_finish, first_finish
