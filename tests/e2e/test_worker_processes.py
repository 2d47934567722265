"""`chute worker` as real processes on a throw-away PostgreSQL: many workers share the
queue, a killed worker's job is rescued and done once, and SIGTERM drains cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any
from uuid import UUID

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.application import NewJob, OrchestrationEngine
from chute.domain import RESCUER, JobStatus, Priority, SourceType
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.factories import make_engine
from tests.pg import create_database, drop_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JOBS = 500


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {
        "CHUTE_STORAGE_DIR": str(tmp_path / "storage"),
        "CHUTE_RESCUE_INTERVAL_SECONDS": "1",
        "CHUTE_WORKER_POLL_SECONDS": "0.1",
        "CHUTE_LOG_FORMAT": "json",
        "PYTHONPATH": path,
    }


@pytest.fixture
async def database(postgres_server_url: str, env: dict[str, str]) -> AsyncIterator[SqlDatabase]:
    """A new database, migrated by `chute migrate`; `env` is pointed at it."""
    url = await create_database(postgres_server_url)
    env["CHUTE_DATABASE_URL"] = url
    migrate = await asyncio.create_subprocess_exec(
        *chute("migrate"), env=env, stdout=PIPE, stderr=PIPE
    )
    _, errors = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, errors.decode()
    db = SqlDatabase(create_engine_for(url))
    try:
        yield db
    finally:
        await db.dispose()
        await drop_database(postgres_server_url, str(make_url(url).database))


@pytest.fixture
def engine(database: SqlDatabase) -> OrchestrationEngine:
    return make_engine(uow=database)


def chute(*args: str) -> list[str]:
    return [sys.executable, "-m", "chute.entrypoints", *args]


class Workers:
    """`chute worker` processes by worker id, each logging to its own file."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.processes = env, logs, dict[str, subprocess.Popen[bytes]]()

    def start(self, worker_id: str, *options: str) -> subprocess.Popen[bytes]:
        processor = ("--processor", "tests.processors:sleepy")
        command = chute(
            "worker", *processor, "--worker-id", worker_id, "--lease-seconds", "5", *options
        )
        with (self.logs / f"{worker_id}.log").open("wb") as log:
            process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.processes[worker_id] = process
        return process

    def log(self, worker_id: str) -> str:
        return (self.logs / f"{worker_id}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    running = Workers(env, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


async def scalar_rows(db: SqlDatabase, sql: str) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def status_counts(db: SqlDatabase) -> dict[str, int]:
    return dict(await scalar_rows(db, "SELECT status, count(*) FROM jobs GROUP BY status"))


async def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


async def test_three_workers_do_every_job_once_and_rescue_a_killed_workers_job(
    engine: OrchestrationEngine, database: SqlDatabase, workers: Workers
) -> None:
    slow = NewJob(source_type=SourceType.URL, source_uri="https://example.org/slow",
                  priority=Priority.URGENT, metadata={"first_attempt_seconds": 600})  # fmt: skip
    quick = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{i}")
        for i in range(JOBS - 1)
    ]
    [marked, *_] = (await engine.create_jobs([slow, *quick])).jobs
    started = time.monotonic()
    for worker_id in ("w1", "w2", "w3"):
        workers.start(worker_id, "--slots", "4")

    async def holder() -> str | None:
        job = await engine.get_job(marked.id)
        return job.worker_id if job.status is JobStatus.RUNNING else None

    killed = await wait_for(holder, 60, "the marked job running")
    workers.processes[killed].send_signal(signal.SIGKILL)
    assert workers.processes[killed].wait(10) == -signal.SIGKILL

    async def all_completed() -> bool:
        return await status_counts(database) == {"completed": JOBS}

    try:
        await wait_for(all_completed, 120, f"all {JOBS} jobs completed")
    finally:
        counts = await status_counts(database)
    seconds = time.monotonic() - started

    completions = await scalar_rows(
        database, "SELECT job_id, actor FROM job_events WHERE to_status = 'completed'"
    )
    per_job = Counter(job_id for job_id, _ in completions)
    duplicates = sum(1 for n in per_job.values() if n > 1)
    stuck = sum(n for status, n in counts.items() if status in ("pending", "running"))
    rescued = await rescued_jobs(database)
    print(
        f"\njobs={JOBS} workers=3 duplicates={duplicates} stuck={stuck} seconds={seconds:.1f} "
        f"killed={killed} rescued={len(rescued)} (the marked job {marked.id}) "
        f"completed by {dict(sorted(Counter(actor for _, actor in completions).items()))}"
    )
    assert len(per_job) == JOBS and duplicates == 0 and stuck == 0
    assert marked.id in rescued
    trail = [(e.from_status, e.to_status, e.actor) for e in await engine.list_job_events(marked.id)]
    [(_, _, finisher)] = [step for step in trail if step[1] is JobStatus.COMPLETED]
    assert trail == [
        (None, JobStatus.PENDING, "client"),
        (JobStatus.PENDING, JobStatus.RUNNING, killed),
        (JobStatus.RUNNING, JobStatus.PENDING, RESCUER),
        (JobStatus.PENDING, JobStatus.RUNNING, finisher),
        (JobStatus.RUNNING, JobStatus.COMPLETED, finisher),
    ]
    assert finisher != killed


async def rescued_jobs(db: SqlDatabase) -> set[UUID]:
    rows = await scalar_rows(db, f"SELECT job_id FROM job_events WHERE actor = '{RESCUER}'")
    return {job_id for (job_id,) in rows}


async def test_sigterm_releases_running_jobs_and_exits_zero(
    engine: OrchestrationEngine, database: SqlDatabase, workers: Workers
) -> None:
    specs = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{i}",
               metadata={"seconds": 3})
        for i in range(6)
    ]  # fmt: skip
    await engine.create_jobs(specs)
    process = workers.start("w1", "--slots", "4", "--grace-seconds", "0.5")

    async def four_running() -> bool:
        return (await status_counts(database)).get("running") == 4

    await wait_for(four_running, 60, "four jobs running")
    held = await scalar_rows(database, "SELECT id FROM jobs WHERE status = 'running'")
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0, workers.log("w1")
    seconds = time.monotonic() - stopping
    print(f"\nSIGTERM to exit: {seconds:.1f}s")
    assert seconds < 5
    assert await status_counts(database) == {"pending": 6}
    for (job_id,) in held:
        job = await engine.get_job(job_id)
        assert (job.attempts, job.worker_id, job.run_after) == (0, None, None)
        last = (await engine.list_job_events(job_id))[-1]
        assert (last.to_status, last.actor) == (JobStatus.PENDING, "w1")
        assert last.detail == "released by a stopping worker"
    assert '"worker.stopped"' in workers.log("w1")
