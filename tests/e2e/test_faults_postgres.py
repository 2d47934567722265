"""PostgreSQL stopped and started again, or frozen, under a running `chute serve`: during
the outage every request is answered 503 within a bound (no hang, no 500) and /readyz
says not ready; once the server is back chute serves again without a restart of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from chute.adapters.sqlalchemy.engine import COMMAND_TIMEOUT_SECONDS, CONNECT_TIMEOUT_SECONDS

from tests.faults import (
    URL_JOB,
    ChuteServer,
    RestartablePostgres,
    chute,
    chute_env,
)
from tests.pg import create_database

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 4.0
ANSWER_WITHIN = 10.0  # seconds: the bound on any answer while the database is away
BACK_WITHIN = 15.0  # seconds after PostgreSQL is up again
# Long enough that a statement on a pooled connection meets its command timeout.
FREEZE_SECONDS = COMMAND_TIMEOUT_SECONDS + 3
FROZEN_ANSWER_WITHIN = COMMAND_TIMEOUT_SECONDS + CONNECT_TIMEOUT_SECONDS + 5


@dataclass
class Probe:
    kind: str  # "create" or "readyz"
    sent: float
    answered: float
    status: int | str  # an HTTP status, or the transport error's name

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


@pytest.fixture
async def server(postgres: RestartablePostgres, tmp_path: Path) -> AsyncIterator[ChuteServer]:
    url = await create_database(postgres.url)
    env = chute_env(url, tmp_path / "storage")
    migrate = await asyncio.create_subprocess_exec(
        *chute("migrate"), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, errors = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, errors.decode()
    server = ChuteServer(env, tmp_path / "server.log")
    try:
        await server.start()
        yield server
    finally:
        server.stop()


async def probe(client: httpx.AsyncClient, kind: str, probes: list[Probe]) -> None:
    """One request, recorded; a generous client timeout, so that a hang shows as a long
    answer rather than as our own timeout."""
    sent = time.monotonic()
    try:
        if kind == "create":
            response = await client.post("/api/v1/jobs", json=URL_JOB, timeout=120)
        else:
            response = await client.get("/readyz", timeout=120)
        status: int | str = response.status_code
        if status == 503:
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"] == "service-unavailable"
    except httpx.TransportError as e:
        status = type(e).__name__
    probes.append(Probe(kind, sent, time.monotonic(), status))


async def probing(base_url: str, kind: str, probes: list[Probe], stop: asyncio.Event) -> None:
    """Send one kind of request after another, 50 ms apart, until `stop`."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        while not stop.is_set():
            await probe(client, kind, probes)
            await asyncio.sleep(0.05)


@asynccontextmanager
async def probes_running(base_url: str) -> AsyncIterator[list[Probe]]:
    """Three clients creating jobs and one asking /readyz, while the body runs."""
    probes: list[Probe] = []
    stop = asyncio.Event()
    kinds = ["create", "create", "create", "readyz"]
    tasks = [asyncio.create_task(probing(base_url, k, probes, stop)) for k in kinds]
    try:
        await asyncio.sleep(0.5)  # every client served before the fault
        yield probes
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 150)


async def warm(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        assert (await client.post("/api/v1/jobs", json=URL_JOB)).status_code == 201
        assert (await client.get("/readyz")).status_code == 200


def assert_only_answers(probes: list[Probe]) -> None:
    """Every request was answered, with a success or a 503, never a 500 or a drop."""
    statuses = sorted({str(p.status) for p in probes})
    assert not [p for p in probes if not isinstance(p.status, int)], "the server went away"
    assert not [p for p in probes if p.status not in (200, 201, 503)], statuses


async def wait_until(probes: list[Probe], after: float, kind: str, status: int) -> Probe:
    deadline = time.monotonic() + BACK_WITHIN
    while time.monotonic() < deadline:
        for probe in probes:
            if probe.kind == kind and probe.sent >= after and probe.status == status:
                return probe
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {status} to {kind} within {BACK_WITHIN}s of PostgreSQL's start")


async def test_postgres_restart_gives_bounded_503s_then_service_without_a_restart(
    postgres: RestartablePostgres, server: ChuteServer
) -> None:
    await warm(server.base_url)
    async with probes_running(server.base_url) as probes:
        stopping = time.monotonic()
        await asyncio.to_thread(postgres.stop)
        stopped = time.monotonic()
        await asyncio.sleep(OUTAGE_SECONDS)
        starting = time.monotonic()
        await asyncio.to_thread(postgres.start)
        started = time.monotonic()
        created = await wait_until(probes, started, "create", 201)
        ready = await wait_until(probes, started, "readyz", 200)

    # Whatever overlapped the outage (sent before the server was up again, answered
    # after its stop began).
    outage = [p for p in probes if p.sent < starting and p.answered > stopping]
    down = [p for p in probes if p.sent >= stopped and p.answered <= starting]
    first_503 = min(p.answered for p in probes if p.status == 503)
    slowest = max(p.seconds for p in outage)
    statuses = sorted({str(p.status) for p in probes})
    print(
        f"\nPostgreSQL restart: stop took {stopped - stopping:.2f}s, start "
        f"{started - starting:.2f}s; first 503 {first_503 - stopping:.2f}s after the stop "
        f"began; {len(down)} requests while down, slowest answer overlapping the outage "
        f"{slowest:.2f}s; first 201 {created.answered - started:.2f}s and first ready "
        f"{ready.answered - started:.2f}s after PostgreSQL was up; statuses seen {statuses}"
    )
    assert_only_answers(probes)
    assert down, "no request was answered during the outage"
    assert {p.status for p in down} == {503}
    assert any(p.kind == "readyz" for p in down)
    assert slowest < ANSWER_WITHIN
    assert server.process is not None and server.process.poll() is None


async def test_frozen_postgres_gives_503s_within_the_timeouts_then_service_once_thawed(
    postgres: RestartablePostgres, server: ChuteServer
) -> None:
    """SIGSTOP on every server process: the clients' pooled connections hang until the
    command timeout, new connections until the connect timeout; nothing hangs longer."""
    await warm(server.base_url)
    async with probes_running(server.base_url) as probes:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            with postgres.frozen():
                freezing = time.monotonic()
                # More requests while the probers' connections hang: these need new ones.
                await asyncio.sleep(1)
                kinds = ("create", "readyz") * 2
                late = [asyncio.create_task(probe(client, kind, probes)) for kind in kinds]
                await asyncio.sleep(FREEZE_SECONDS - 1)
            thawed = time.monotonic()
            await asyncio.wait_for(asyncio.gather(*late), FROZEN_ANSWER_WITHIN)
        created = await wait_until(probes, thawed, "create", 201)
        ready = await wait_until(probes, thawed, "readyz", 200)

    during = [p for p in probes if p.sent < thawed and p.answered > freezing]
    frozen = [p for p in during if p.sent >= freezing and p.answered < thawed]
    slowest = max(p.seconds for p in during)
    first_503 = min(p.answered for p in frozen if p.status == 503)
    latencies = sorted(round(p.seconds, 1) for p in frozen)
    print(
        f"\nPostgreSQL frozen for {thawed - freezing:.1f}s: {len(frozen)} answers while frozen, "
        f"all {sorted({str(p.status) for p in frozen})}, latencies {latencies}; first 503 "
        f"{first_503 - freezing:.2f}s after the freeze; slowest {slowest:.2f}s; after the "
        f"thaw first 201 in {created.answered - thawed:.2f}s, ready in "
        f"{ready.answered - thawed:.2f}s"
    )
    assert_only_answers(probes)
    assert {p.status for p in frozen} == {503}
    assert any(p.kind == "readyz" for p in frozen)
    # New connections give up at the connect timeout, pooled ones at the command timeout.
    assert min(p.seconds for p in frozen) < CONNECT_TIMEOUT_SECONDS + 2
    assert slowest < FROZEN_ANSWER_WITHIN
    assert server.process is not None and server.process.poll() is None


async def test_restart_while_idle_costs_at_most_one_503_per_pool_then_service(
    postgres: RestartablePostgres, server: ChuteServer
) -> None:
    """No request meets the outage: the pooled connections are found broken only when
    next used. There is no ping at checkout; the first statement to meet a broken
    connection invalidates its whole pool, so a handful of 503s (one per pool: the
    requests' and group commit's) come before service, not one per pooled connection."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        # Several connections in each pool, all of which the restart will break.
        warm_up = [client.post("/api/v1/jobs", json=URL_JOB) for _ in range(8)]
        warm_up += [client.get("/readyz") for _ in range(8)]
        assert {r.status_code for r in await asyncio.gather(*warm_up)} == {200, 201}
        await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(postgres.start)
        statuses = []
        for _ in range(20):  # one at a time: each may take any pooled connection
            statuses.append((await client.post("/api/v1/jobs", json=URL_JOB)).status_code)
            statuses.append((await client.get("/readyz")).status_code)
    print(f"\nAfter an idle restart: {statuses}")
    assert set(statuses) <= {200, 201, 503}
    assert statuses.count(503) <= 3
    assert statuses[-10:] == [201, 200] * 5
