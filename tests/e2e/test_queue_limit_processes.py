"""A concurrency limit holds across `chute worker` processes: never more than the limit
of a queue's jobs running or cancelling at once, and no job claimed twice.

8 workers on one PostgreSQL (and 4 on one SQLite file), each of several slots, share a
queue limited to 3 and an unlimited one; half of them run with `--queue` for those two,
and never claim the jobs of a third queue, which the others do. The check reads the
history every worker wrote: each job's held interval (from its claim to the event that
ended it), swept in the order the database recorded the events, so that no moment
between two samples escapes it; a sampler watches the jobs table meanwhile as well.

The sweep orders events by their id, not by their `at`: a claim takes its time before it
waits for the queue's lock, so a claim that waited may carry a time earlier than the
completion that made room for it. Ids are drawn as the events are written, and a claim
of the queue writes its events after it counted the queue's held jobs under the lock:
every end it counted is recorded before it, and every earlier claim of the queue was
committed before it took the lock.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any
from uuid import UUID

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.application import NewJob, OrchestrationEngine, QueueChange
from chute.domain import JobStatus, SourceType
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.factories import make_engine, sqlite_url
from tests.pg import create_database, drop_database

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
LIMITED, FREE, ELSEWHERE = "limited", "free", "elsewhere"
LIMIT, JOBS, FREE_JOBS, ELSEWHERE_JOBS = 3, 500, 100, 20
WORKERS = {"postgresql": 8, "sqlite": 4}
HELD = {JobStatus.RUNNING.value, JobStatus.CANCELLING.value}


def chute(*args: str) -> list[str]:
    return [sys.executable, "-m", "chute.entrypoints", *args]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return os.environ | {
        "CHUTE_STORAGE_DIR": str(tmp_path / "storage"),
        "CHUTE_RESCUE_INTERVAL_SECONDS": "1",
        "CHUTE_WORKER_POLL_SECONDS": "0.05",
        "CHUTE_LOG_FORMAT": "json",
        "PYTHONPATH": path,
    }


@pytest.fixture(params=["postgresql", "sqlite"])
async def database(
    request: pytest.FixtureRequest, env: dict[str, str], tmp_path: Path
) -> AsyncIterator[SqlDatabase]:
    """A new database of the parametrised kind, migrated by `chute migrate`; `env` is
    pointed at it."""
    server = request.getfixturevalue("postgres_server_url") if request.param == "postgresql" else ""
    url = await create_database(server) if server else sqlite_url(tmp_path / "chute.db")
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
        if server:
            await drop_database(server, str(make_url(url).database))


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def start_worker(env: dict[str, str], logs: Path, n: int) -> subprocess.Popen[bytes]:
    """Worker `w{n}`: the even ones claim only from the two queues of the test."""
    queues = ["--queue", LIMITED, "--queue", FREE] if n % 2 == 0 else []
    command = chute("worker", "--processor", "tests.processors:sleepy", "--worker-id",
                    f"w{n}", "--slots", "4", "--lease-seconds", "30", *queues)  # fmt: skip
    worker_id = f"w{n}"
    with (logs / f"{worker_id}.log").open("wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


async def rows(db: SqlDatabase, sql: str) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


def most_held_at_once(events: list[tuple[Any, str | None, str]]) -> int:
    """Sweep (job id, from, to) events, in the order recorded: the most jobs held at once."""
    held, most = 0, 0
    for _, before, after in events:
        if after in HELD and before not in HELD:
            held += 1
        elif before in HELD and after not in HELD:
            held -= 1
        most = max(most, held)
    return most


async def test_a_limit_of_3_holds_across_worker_processes_and_no_job_is_claimed_twice(
    database: SqlDatabase,
    env: dict[str, str],
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    engine: OrchestrationEngine = make_engine(uow=database)
    await engine.update_queue(LIMITED, QueueChange(concurrency_limit=LIMIT,
                                                   set_concurrency_limit=True))  # fmt: skip
    specs = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{i}", queue=queue)
        for queue, n in ((LIMITED, JOBS), (FREE, FREE_JOBS), (ELSEWHERE, ELSEWHERE_JOBS))
        for i in range(n)
    ]
    await engine.create_jobs(specs)
    kind = database.engine.dialect.name
    started = time.monotonic()
    processes += [start_worker(env, tmp_path, n) for n in range(WORKERS[kind])]

    sampled = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        counts = dict(await rows(database, f"SELECT status, count(*) FROM jobs WHERE queue = "
                                           f"'{LIMITED}' AND status IN ('running', 'cancelling') "
                                           "GROUP BY status"))  # fmt: skip
        sampled = max(sampled, sum(counts.values()))
        done = await rows(database, "SELECT count(*) FROM jobs WHERE status = 'completed'")
        if done[0][0] == JOBS + FREE_JOBS + ELSEWHERE_JOBS:
            break
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    assert all(process.poll() is None for process in processes), "a worker died"

    events = await rows(database, "SELECT e.job_id, e.from_status, e.to_status, e.actor "
                                  "FROM job_events e JOIN jobs j ON j.id = e.job_id "
                                  f"WHERE j.queue = '{LIMITED}' ORDER BY e.id")  # fmt: skip
    claims: Counter[UUID] = Counter()
    claimers: dict[str, int] = defaultdict(int)
    for job_id, before, after, actor in events:
        if (before, after) == ("pending", "running"):
            claims[job_id] += 1
            claimers[actor] += 1
    swept = most_held_at_once([(job_id, before, after) for job_id, before, after, _ in events])
    statuses = dict(await rows(database, "SELECT status, count(*) FROM jobs GROUP BY status"))
    print(f"\n{kind}: workers={WORKERS[kind]} jobs={JOBS}+{FREE_JOBS} limit={LIMIT} "
          f"most held (swept)={swept} (sampled)={sampled} seconds={seconds:.1f} "
          f"claims per worker={dict(sorted(claimers.items()))}")  # fmt: skip
    assert statuses == {"completed": JOBS + FREE_JOBS + ELSEWHERE_JOBS}
    assert len(claims) == JOBS and set(claims.values()) == {1}  # each claimed once
    assert swept <= LIMIT
    assert sampled <= LIMIT
    assert len(claimers) > 1  # the queue really was shared
    elsewhere = await rows(database, "SELECT DISTINCT e.actor FROM job_events e JOIN jobs j "
                                     f"ON j.id = e.job_id WHERE j.queue = '{ELSEWHERE}' "
                                     "AND e.to_status = 'running'")  # fmt: skip
    assert {int(actor[1:]) % 2 for (actor,) in elsewhere} == {1}  # not by --queue workers
