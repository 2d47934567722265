"""PostgreSQL stopped for a few seconds under a running `chute worker` process, while its
jobs finish: the worker keeps each outcome, sends it again once the database is back,
and every job ends completed on its first attempt, none lost, none run twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import pytest
from chute.adapters.memory.files import MemoryFileStore
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.application import NewJob, OrchestrationEngine, ServiceUnavailable
from chute.domain import SourceType
from sqlalchemy import text

from tests.faults import RestartablePostgres, chute
from tests.pg import create_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JOBS = 20
SLOTS = 4
# Each job's work: longer than stopping PostgreSQL takes, shorter than the outage, so
# that the jobs seen running when it is stopped end while it is away.
JOB_SECONDS = 2.0
OUTAGE_SECONDS = 4.0
LEASE_SECONDS = 30  # longer than the outage and the way back


@pytest.fixture
async def env(postgres: RestartablePostgres, tmp_path: Path) -> dict[str, str]:
    """The environment of chute processes on a new, migrated database."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = os.environ | {
        "CHUTE_DATABASE_URL": await create_database(postgres.url),
        "CHUTE_STORAGE_DIR": str(tmp_path / "storage"),
        "CHUTE_RESCUE_INTERVAL_SECONDS": "1",
        "CHUTE_WORKER_POLL_SECONDS": "0.1",
        "CHUTE_LOG_FORMAT": "json",
        "PYTHONPATH": path,
    }
    migrate = await asyncio.create_subprocess_exec(
        *chute("migrate"), env=env, stdout=PIPE, stderr=PIPE
    )
    _, errors = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, errors.decode()
    return env


@pytest.fixture
async def database(env: dict[str, str]) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(create_engine_for(env["CHUTE_DATABASE_URL"]))
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "worker.log"
    command = chute(
        "worker", "--processor", "tests.processors:sleepy", "--worker-id", "w1",
        "--slots", str(SLOTS), "--lease-seconds", str(LEASE_SECONDS), "--grace-seconds", "5",
    )  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def rows(db: SqlDatabase, sql: str) -> list[Any]:
    """The rows of a query; none while the database is away (or its pool reconnects)."""
    try:
        async with db(read_only=True) as uow:
            return list((await uow.read(text(sql))).all())  # type: ignore[attr-defined]
    except ServiceUnavailable:
        return []


async def counted(db: SqlDatabase, status: str) -> int:
    found = await rows(db, f"SELECT count(*) FROM jobs WHERE status = '{status}'")
    return int(found[0][0]) if found else -1


async def wait_for(db: SqlDatabase, timeout: float, **at_least: int) -> None:
    """Wait until at least so many jobs are in each of these statuses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all([await counted(db, status) >= n for status, n in at_least.items()]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not {at_least} within {timeout}s")


async def test_a_worker_reports_what_finished_while_postgres_was_away(
    postgres: RestartablePostgres,
    database: SqlDatabase,
    worker: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, log = worker
    engine = OrchestrationEngine(
        uow=database, files=MemoryFileStore(), detectors={}, clock=SystemClock(),
        ids=UuidV7Generator(),
    )  # fmt: skip
    specs = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{n}",
               metadata={"seconds": JOB_SECONDS})
        for n in range(JOBS)
    ]  # fmt: skip
    await engine.create_jobs(specs)
    # Under way: a round of jobs done, and the next one just begun.
    await wait_for(database, 60, completed=SLOTS, running=SLOTS)

    await asyncio.to_thread(postgres.stop)
    await asyncio.sleep(OUTAGE_SECONDS)  # the jobs running now end meanwhile
    await asyncio.to_thread(postgres.start)
    await wait_for(database, 90, completed=JOBS)

    jobs = await rows(database, "SELECT status, attempts FROM jobs")
    actors = await rows(database, "SELECT actor FROM job_events WHERE to_status = 'completed'")
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    written = log.read_text(errors="replace")
    print(
        f"\nworker log during the outage: {written.count('worker.report_delayed')} reports "
        f"delayed, {written.count('worker.report_sent')} sent once PostgreSQL was back, "
        f"{written.count('worker.claim_failed')} claims failed"
    )
    assert sorted(set(jobs)) == [("completed", 1)] and len(jobs) == JOBS
    assert sorted(actors) == [("w1",)] * JOBS  # each completed once, by the worker itself
    assert '"worker.report_delayed"' in written  # the outage met reports, for real
    assert written.count('"worker.report_sent"') == written.count('"worker.report_delayed"')
    for symptom in ("never retrieved", "Traceback", "worker.report_abandoned", "job_error"):
        assert symptom not in written, symptom
