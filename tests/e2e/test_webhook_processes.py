"""Webhooks sent by real `chute serve` processes to a real receiver on 127.0.0.1, which
checks every signature with `standardwebhooks`: a receiver that is down for a while gets
each delivery later, once; deliveries pending when the server is SIGKILLed are sent
after its restart; a receiver slower than the timeout gets the delivery again; a
private address is refused unless the server allows private addresses; and two
servers on one PostgreSQL send each delivery once.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests import pg
from tests.factories import sqlite_url
from tests.faults import URL_JOB, ChuteServer, chute, chute_env
from tests.pg import create_database, drop_database
from tests.webhooks import Receiver

pytestmark = pytest.mark.slow

FAST = {
    "fetch_allow_private": "true",  # the receiver is on 127.0.0.1
    "webhook_retry_base_seconds": "0.3",
    "webhook_interval_seconds": "0.1",
    "webhook_timeout_seconds": "1",
    "log_level": "INFO",
}


@pytest.fixture
def env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    shutil.copy(sqlite_template, tmp_path / "chute.db")  # migrated already
    return chute_env(sqlite_url(tmp_path / "chute.db"), tmp_path / "files", **FAST)


@pytest.fixture
async def server(env: dict[str, str], tmp_path: Path) -> AsyncIterator[ChuteServer]:
    started = ChuteServer(env, tmp_path / "serve.log")
    try:
        await started.start()
        yield started
    finally:
        started.stop()


async def until(check: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.1)


async def register(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.post("/api/v1/webhooks", json={"url": url, "events": ["job.created"]})
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()
    return hook


async def deliveries(client: httpx.AsyncClient, hook: dict[str, Any]) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{hook['id']}/deliveries")
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def create_jobs(client: httpx.AsyncClient, count: int) -> None:
    for _ in range(count):
        assert (await client.post("/api/v1/jobs", json=URL_JOB)).status_code == 201


async def test_a_receiver_down_for_a_while_gets_each_delivery_later_once(
    server: ChuteServer,
) -> None:
    port = pg.free_port()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        hook = await register(client, f"http://127.0.0.1:{port}/hook")
        await create_jobs(client, 5)

        async def failed_twice() -> bool:
            found = await deliveries(client, hook)
            return len(found) == 5 and all(d["attempts"] >= 2 for d in found)

        await until(failed_twice)  # nothing listens on the port: refused, retried
        assert all(
            d["last_error"].startswith("could not send") for d in await deliveries(client, hook)
        )

        receiver = Receiver(port)
        receiver.secret = hook["secret"]
        with receiver.running():

            async def all_delivered() -> bool:
                return all(d["delivered_at"] for d in await deliveries(client, hook))

            await until(all_delivered)
            await asyncio.sleep(0.5)  # time for a second copy, were one to come
            assert sorted(receiver.ids()) == sorted(d["id"] for d in await deliveries(client, hook))
            assert receiver.rejected == 0
    assert '"webhook.failed"' in server.log_text() and '"webhook.delivered"' in server.log_text()
    assert hook["secret"] not in server.log_text()


async def test_deliveries_pending_at_a_sigkill_are_sent_after_the_restart(
    server: ChuteServer,
) -> None:
    with Receiver().running() as receiver:
        receiver.status = 503
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            hook = await register(client, receiver.url)
            receiver.secret = hook["secret"]
            await create_jobs(client, 5)

            async def all_refused() -> bool:
                found = await deliveries(client, hook)
                return len(found) == 5 and all(d["last_status_code"] == 503 for d in found)

            await until(all_refused)
        server.kill()
        receiver.status = None
        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:

            async def all_delivered() -> bool:
                return all(d["delivered_at"] for d in await deliveries(client, hook))

            await until(all_delivered)
            await asyncio.sleep(0.5)
            assert sorted(receiver.ids()) == sorted(d["id"] for d in await deliveries(client, hook))


async def test_a_receiver_slower_than_the_timeout_gets_the_delivery_again(
    server: ChuteServer,
) -> None:
    with Receiver().running() as receiver:
        receiver.delay = 1.5  # CHUTE_WEBHOOK_TIMEOUT_SECONDS is 1
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            hook = await register(client, receiver.url)
            receiver.secret = hook["secret"]
            await create_jobs(client, 1)

            async def timed_out() -> bool:
                found = await deliveries(client, hook)
                return bool(found) and found[0]["last_error"] == "timed out after 1 s"

            await until(timed_out)
            receiver.delay = 0

            async def delivered() -> bool:
                return bool((await deliveries(client, hook))[0]["delivered_at"])

            await until(delivered)
            (d,) = await deliveries(client, hook)
            assert d["attempts"] >= 2 and d["last_status_code"] == 204
            # The slow copies arrived too (the receiver had them, chute did not wait): a
            # retry carries the same webhook-id, by which receivers drop repeats.
            assert set(receiver.ids()) == {d["id"]}


async def test_a_private_address_is_refused_unless_the_server_allows_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    strict = ChuteServer(env | {"CHUTE_FETCH_ALLOW_PRIVATE": "false"}, tmp_path / "strict.log")
    await strict.start()
    try:
        async with httpx.AsyncClient(base_url=strict.base_url, timeout=10) as client:
            for url in ("http://127.0.0.1:9/hook", "http://[::ffff:10.0.0.1]/hook"):
                refused = await client.post("/api/v1/webhooks", json={"url": url})
                assert refused.status_code == 422, refused.text
                assert [e["loc"] for e in refused.json()["errors"]] == [["body", "url"]]
            assert (await client.get("/api/v1/webhooks")).json() == {"items": []}
    finally:
        strict.stop()


async def test_two_servers_on_one_postgresql_send_each_delivery_once(
    postgres_server_url: str, tmp_path: Path
) -> None:
    url = await create_database(postgres_server_url)
    env = chute_env(url, tmp_path / "files", **FAST)
    servers = [ChuteServer(env, tmp_path / f"serve-{n}.log") for n in range(2)]
    try:
        migrate = await asyncio.create_subprocess_exec(
            *chute("migrate"), env=env, stderr=asyncio.subprocess.PIPE
        )
        _, errors = await migrate.communicate()
        assert migrate.returncode == 0, errors.decode()
        with Receiver().running() as receiver:
            receiver.status = 503  # hold them until every server is up and racing
            await asyncio.gather(*(server.start() for server in servers))
            async with httpx.AsyncClient(base_url=servers[0].base_url, timeout=10) as client:
                hook = await register(client, receiver.url)
                receiver.secret = hook["secret"]
                batch = {"jobs": [URL_JOB] * 60}
                assert (await client.post("/api/v1/jobs/batch", json=batch)).status_code == 201

                async def all_tried() -> bool:
                    found = await deliveries(client, hook)
                    return len(found) == 60 and all(d["attempts"] for d in found)

                await until(all_tried)
                receiver.status = None

                async def all_delivered() -> bool:
                    return all(d["delivered_at"] for d in await deliveries(client, hook))

                await until(all_delivered)
                await asyncio.sleep(0.5)
                ids = receiver.ids()
                assert len(ids) == len(set(ids)) == 60
        senders = [s for s in servers if '"webhook.delivered"' in s.log_text()]
        assert len(senders) == 2, "one server sent every delivery: no race was tested"
    finally:
        for server in servers:
            server.stop()
        await drop_database(postgres_server_url, str(make_url(url).database))
