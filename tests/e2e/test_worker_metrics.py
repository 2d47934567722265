"""`chute worker --metrics-port` as a real process: its /metrics counts the jobs it ran
and reads the live jobs of every queue from the database, in Prometheus's format."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import make_engine, make_new_job, sqlite_url
from tests.faults import chute, chute_env
from tests.pg import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[str]:
    """A migrated SQLite file with 3 jobs in queue `work` and 2 in queue `mail`."""
    url = sqlite_url(tmp_path / "chute.db")
    await upgrade(url)
    db = SqlDatabase(create_engine_for(url))
    try:
        engine = make_engine(uow=db)
        await engine.create_jobs([make_new_job(queue="work", metadata={"seconds": 0.4})] * 3)
        await engine.create_jobs([make_new_job(queue="mail")] * 2)
    finally:
        await db.dispose()
    return url


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_worker_serves_its_metrics_on_its_port(database: str, tmp_path: Path) -> None:
    port = free_port()
    env = chute_env(database, tmp_path / "storage")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = chute("worker", "--processor", "tests.processors:sleepy", "--queue", "work",
                    "--slots", "3", "--metrics-port", str(port))  # fmt: skip
    log = tmp_path / "worker.log"
    process = start(command, env, log)
    try:
        done: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get("/metrics")
                    assert response.status_code == 200
                    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
                    done = samples_of(response.text)
                    # A scrape reads the database's live counts, then the counters: a
                    # job that ends in between is counted finished and still running.
                    # Wait for a scrape that saw all three ended on both sides.
                    finished = frozenset({"queue": "work", "status": "completed"}.items())
                    running = frozenset({"queue": "work", "status": "running"}.items())
                    if (
                        done.get(("chute_jobs_finished_total", finished)) == 3
                        and done.get(("chute_jobs", running)) == 0
                    ):
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the worker's metrics never showed 3 jobs ended: {done}")
            assert (await client.get("/other")).status_code == 404

        def value(name: str, **labels: str) -> float | None:
            return done.get((name, frozenset(labels.items())))

        assert value("chute_job_run_seconds_count", queue="work") == 3
        run_sum = value("chute_job_run_seconds_sum", queue="work")
        assert run_sum is not None and run_sum >= 3 * 0.4
        assert value("chute_job_wait_seconds_count", queue="work") == 3
        # Live counts come from the database: the mail jobs this worker never claims.
        assert value("chute_jobs", queue="mail", status="pending") == 2
        assert value("chute_jobs_created_total", queue="mail", source_type="url") is None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, log.read_text()
