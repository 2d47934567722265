"""Schedules with three `chute serve` processes on one PostgreSQL: each due tick creates
exactly one job, however many servers see it due at once.

Rounds of missed ticks are played by moving every schedule's next run 90 minutes back
(as if no server had run for 90 ticks): each round must create one job per schedule,
for the latest tick. Then a real minute boundary passes, after one schedule was deleted
and one changed through other servers than the one that made them: each other schedule
gets one more job; the deleted and the changed one none.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.faults import ChuteServer, chute, chute_env
from tests.pg import asyncpg_dsn

pytestmark = pytest.mark.slow

SCHEDULES = 12
ROUNDS = 5
URL_JOB = {"source_type": "url", "source_uri": "https://example.org/report.pdf"}


@pytest.fixture
async def servers(fresh_postgres_url: str, tmp_path: Path) -> AsyncIterator[list[ChuteServer]]:
    env = chute_env(fresh_postgres_url, tmp_path / "files", log_level="WARNING")
    migrate = await asyncio.create_subprocess_exec(
        *chute("migrate"), env=env, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await migrate.communicate()
    assert migrate.returncode == 0, errors.decode()
    started = [ChuteServer(env, tmp_path / f"serve-{n}.log") for n in range(3)]
    try:
        await asyncio.gather(*(server.start() for server in started))
        yield started
    finally:
        for server in started:
            server.stop()


async def jobs_per_schedule(conn: asyncpg.Connection) -> Counter[str]:
    rows = await conn.fetch("SELECT schedule, count(*) FROM jobs GROUP BY schedule")
    return Counter({row[0]: row[1] for row in rows if row[0] is not None})


async def wait_until_taken(conn: asyncpg.Connection, names: list[str], timeout: float = 20) -> None:
    """Until no schedule of `names` is due any more: some server took its tick."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        due = await conn.fetchval(
            "SELECT count(*) FROM schedules WHERE name = ANY($1) AND next_run_at <= now()", names
        )
        if due == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{due} schedules still due after {timeout}s")


async def test_each_tick_creates_one_job_across_three_servers(
    servers: list[ChuteServer], fresh_postgres_url: str
) -> None:
    names = [f"s{n:02}" for n in range(SCHEDULES)]
    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=10) for s in servers]
    conn = await asyncpg.connect(asyncpg_dsn(fresh_postgres_url))
    try:
        for n, name in enumerate(names):
            body = {"cron": "* * * * *", "job": URL_JOB}
            response = await clients[n % 3].put(f"/api/v1/schedules/{name}", json=body)
            assert response.status_code == 201, response.text

        # Missed ticks, many rounds: the servers race for each due schedule.
        for round in range(1, ROUNDS + 1):
            await conn.execute("UPDATE schedules SET next_run_at = now() - interval '90 minutes'")
            await wait_until_taken(conn, names)
            assert await jobs_per_schedule(conn) == Counter(dict.fromkeys(names, round))
        now = datetime.now(UTC)
        for item in (await clients[1].get("/api/v1/schedules")).json()["items"]:
            last = datetime.fromisoformat(item["last_run_at"])
            assert now - timedelta(minutes=2) < last <= now  # the latest tick, not the 90th
            assert datetime.fromisoformat(item["next_run_at"]) > now

        # Through other servers: delete one, make another yearly, then a real tick.
        assert (await clients[1].delete(f"/api/v1/schedules/{names[0]}")).status_code == 204
        yearly = {"cron": "0 0 1 1 *", "job": URL_JOB}
        replaced = await clients[2].put(f"/api/v1/schedules/{names[1]}", json=yearly)
        assert replaced.status_code == 200, replaced.text
        before = await jobs_per_schedule(conn)
        tick = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
        await asyncio.sleep((tick - datetime.now(UTC)).total_seconds())
        await wait_until_taken(conn, names[2:])
        await asyncio.sleep(1.5)  # a late duplicate would be made within a server's round
        after = await jobs_per_schedule(conn)
        assert after - before == Counter(dict.fromkeys(names[2:], 1))

        # One creation event per job, by the scheduler.
        events = await conn.fetch(
            "SELECT j.id, count(e.id) AS n, min(e.actor) AS actor FROM jobs j "
            "JOIN job_events e ON e.job_id = j.id GROUP BY j.id"
        )
        assert {(row["n"], row["actor"]) for row in events} == {(1, "scheduler")}
        delays = await conn.fetch(
            "SELECT created_at - $1::timestamptz AS delay FROM jobs WHERE created_at >= $1",
            tick,
        )
        assert len(delays) == SCHEDULES - 2
    finally:
        await conn.close()
        for client in clients:
            await client.aclose()
