"""Live updates with real `chute serve` processes: `/api/v1/stream` and `?wait=`.

Two servers on one PostgreSQL: a stream on the second sees what clients and workers do
through the first, with progress and keep-alives. A client that drops its stream
again and again while eight writers commit through both servers, and resumes with
`Last-Event-ID` on either, receives every status change exactly once, in the order
the event table holds them in. On SQLite: `?wait=` answers when the job ends, a stream
resumes by `last_event_id`, and a client that reads nothing is let go while another
receives everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute, chute_env
from tests.pg import asyncpg_dsn

pytestmark = pytest.mark.slow

URL_JOB = {"source_type": "url", "source_uri": "https://example.org/report.pdf"}


@dataclass
class Sse:
    event: str
    data: dict[str, Any]
    id: str | None


async def sse(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Sse | str]:
    """The events of a stream as they come; a comment line comes as its text."""
    async with client.stream("GET", path, headers=headers, timeout=30) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                yield line
            elif line == "":
                if "data" in fields:
                    yield Sse(
                        fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                    )
                fields = {}
            else:
                name, _, value = line.partition(": ")
                fields[name] = value


@pytest.fixture
async def two_servers(
    fresh_postgres_url: str, tmp_path: Path
) -> AsyncIterator[tuple[ChuteServer, ChuteServer]]:
    env = chute_env(
        fresh_postgres_url, tmp_path / "files", log_level="WARNING", stream_keepalive_seconds="0.5"
    )
    migrate = await asyncio.create_subprocess_exec(*chute("migrate"), env=env)
    assert await migrate.wait() == 0
    servers = (ChuteServer(env, tmp_path / "a.log"), ChuteServer(env, tmp_path / "b.log"))
    try:
        await asyncio.gather(*(server.start() for server in servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


async def test_a_stream_on_one_server_sees_what_happens_through_the_other(
    two_servers: tuple[ChuteServer, ChuteServer],
) -> None:
    a, b = two_servers
    async with (
        httpx.AsyncClient(base_url=a.base_url) as ca,
        httpx.AsyncClient(base_url=b.base_url) as cb,
    ):
        seen: list[Sse] = []
        comments: list[str] = []
        opened = asyncio.Event()

        async def watch() -> None:
            async for item in sse(cb, "/api/v1/stream?queue=ocr"):
                if isinstance(item, str):
                    comments.append(item)
                    opened.set()
                else:
                    seen.append(item)
                    if item.event == "job" and item.data["to_status"] == "completed":
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(opened.wait(), 10)
        other = await ca.post("/api/v1/jobs", json=URL_JOB | {"queue": "other"})
        created = await ca.post("/api/v1/jobs", json=URL_JOB | {"queue": "ocr"})
        job_id = created.json()["id"]
        claimed = await ca.post("/api/v1/jobs/claim", json={"worker_id": "w1", "queues": ["ocr"]})
        assert [job["id"] for job in claimed.json()["jobs"]] == [job_id]
        await asyncio.sleep(0.3)  # the feed reads progress from the job once it is running
        beat = {"worker_id": "w1", "progress": 40, "progress_message": "page 4 of 10"}
        assert (await ca.post(f"/api/v1/jobs/{job_id}/heartbeat", json=beat)).status_code == 200
        await asyncio.sleep(1.5)  # a keep-alive comes meanwhile, and the progress
        done = await ca.post(f"/api/v1/jobs/{job_id}/complete", json={"worker_id": "w1"})
        assert done.status_code == 200
        await asyncio.wait_for(watcher, 10)

    changes = [s for s in seen if s.event == "job"]
    assert [(s.data["from_status"], s.data["to_status"]) for s in changes] == [
        (None, "pending"), ("pending", "running"), ("running", "completed")
    ]  # fmt: skip
    assert {s.data["job_id"] for s in seen} == {job_id} != {other.json()["id"]}
    assert all(s.id == str(s.data["event_id"]) for s in changes)
    assert changes[-1].data["job"]["status"] == "completed" and changes[1].data["actor"] == "w1"
    [progress] = [s for s in seen if s.event == "progress"]
    assert progress.id is None
    assert (progress.data["progress"], progress.data["progress_message"]) == (40, "page 4 of 10")
    assert ": keep-alive" in comments


async def test_resuming_by_last_event_id_loses_nothing_and_repeats_nothing(
    two_servers: tuple[ChuteServer, ChuteServer], fresh_postgres_url: str
) -> None:
    """Eight writers create and cancel jobs through both servers for a few seconds; a
    reader drops its stream after a random number of changes and resumes on the other
    server with the id of the last one it received."""
    servers = [httpx.AsyncClient(base_url=s.base_url, timeout=30) for s in two_servers]
    conn = await asyncpg.connect(asyncpg_dsn(fresh_postgres_url))
    try:
        await servers[0].post("/api/v1/jobs", json=URL_JOB)  # the history starts after it
        start = await conn.fetchval("SELECT max(id) FROM job_events")
        stop = time.monotonic() + 4

        async def write(n: int) -> None:
            client = servers[n % 2]
            while time.monotonic() < stop:
                made = await client.post("/api/v1/jobs", json=URL_JOB)
                if n % 3 == 0:
                    await servers[(n + 1) % 2].delete(f"/api/v1/jobs/{made.json()['id']}")

        received: list[int] = []
        rng = random.Random(7)
        last = str(start)

        async def read_until(target: int | None) -> None:
            nonlocal last
            reconnects = 0
            # The reader may have had the last change already before it was stopped.
            while target is None or int(last) != target:
                client = servers[reconnects % 2]
                reconnects += 1
                budget = rng.randint(3, 40)
                stream = sse(client, "/api/v1/stream", {"Last-Event-ID": last})
                async with contextlib.aclosing(stream):
                    async for item in stream:
                        if isinstance(item, Sse) and item.event == "job":
                            received.append(item.data["event_id"])
                            last = item.id or last
                            budget -= 1
                            if budget == 0 or (target is not None and int(last) == target):
                                break

        writers = asyncio.gather(*(write(n) for n in range(8)))
        reader = asyncio.create_task(read_until(None))
        await writers
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        rows = await conn.fetch(
            "SELECT id FROM job_events "
            "WHERE (tx, id) > (SELECT tx, id FROM job_events WHERE id = $1) ORDER BY tx, id",
            start,
        )
        history = [row["id"] for row in rows]
        await asyncio.wait_for(read_until(history[-1]), 60)
    finally:
        await conn.close()
        for client in servers:
            await client.aclose()

    assert len(history) > 100
    assert received == history  # every change once, in the table's order


@pytest.fixture
async def sqlite_server(tmp_path: Path) -> AsyncIterator[ChuteServer]:
    env = chute_env(
        sqlite_url(tmp_path / "chute.db"),
        tmp_path / "files",
        log_level="WARNING",
        stream_buffer="10",
    )
    async with ChuteServer(env, tmp_path / "serve.log") as server:
        yield server


async def test_wait_answers_when_the_job_ends(sqlite_server: ChuteServer) -> None:
    async with httpx.AsyncClient(base_url=sqlite_server.base_url, timeout=30) as client:
        job_id = (await client.post("/api/v1/jobs", json=URL_JOB)).json()["id"]

        async def cancel_soon() -> None:
            await asyncio.sleep(0.5)
            await client.delete(f"/api/v1/jobs/{job_id}")

        started = time.monotonic()
        canceller = asyncio.create_task(cancel_soon())
        waited = await client.get(f"/api/v1/jobs/{job_id}?wait=20")
        elapsed = time.monotonic() - started
        await canceller
        assert waited.status_code == 200 and waited.json()["status"] == "cancelled"
        assert 0.5 <= elapsed < 5

        pending = (await client.post("/api/v1/jobs", json=URL_JOB)).json()["id"]
        started = time.monotonic()
        waited = await client.get(f"/api/v1/jobs/{pending}?wait=1")
        assert waited.json()["status"] == "pending" and 1 <= time.monotonic() - started < 4
        for bad in ("0", "61", "x"):
            refused = await client.get(f"/api/v1/jobs/{pending}?wait={bad}")
            assert refused.status_code == 422


async def test_bad_stream_parameters_are_422(sqlite_server: ChuteServer) -> None:
    async with httpx.AsyncClient(base_url=sqlite_server.base_url, timeout=10) as client:
        for query, headers in [
            ("status=done", {}),
            ("queue=Not%20A%20Queue", {}),
            ("job_id=42", {}),
            ("last_event_id=-1", {}),
            ("", {"Last-Event-ID": "abc"}),
            ("", {"Last-Event-ID": "9" * 30}),
            ("&".join(f"metadata.k{n}=v" for n in range(6)), {}),
            ("surprise=1", {}),
            ("queue=a%00b", {}),
            ("metadata.tenant=a%00b", {}),
            ("status=pending%00", {}),
            ("last_event_id=1%00", {}),
        ]:
            response = await client.get(f"/api/v1/stream?{query}", headers=headers)
            assert response.status_code == 422, (query, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_client_that_reads_nothing_is_let_go_and_costs_the_others_nothing(
    sqlite_server: ChuteServer,
) -> None:
    """CHUTE_STREAM_BUFFER=10: a stream whose client never reads falls behind and is
    dropped; a stream that reads receives every change, resumed by `last_event_id`."""
    stuck = socket.create_connection(("127.0.0.1", sqlite_server.port))
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.sendall(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        async with httpx.AsyncClient(base_url=sqlite_server.base_url, timeout=30) as client:
            got: list[int] = []
            last = "0"

            async def reader() -> None:
                nonlocal last
                while len(got) < 2000:
                    stream = sse(client, f"/api/v1/stream?last_event_id={last}")
                    async with contextlib.aclosing(stream):
                        async for item in stream:
                            if isinstance(item, Sse):
                                got.append(item.data["event_id"])
                                last = item.id or last
                                if len(got) == 2000:
                                    return

            task = asyncio.create_task(reader())
            for _ in range(2):
                body = {"jobs": [URL_JOB | {"metadata": {"pad": "x" * 500}}] * 1000}
                assert (await client.post("/api/v1/jobs/batch", json=body)).status_code == 201
            await asyncio.wait_for(task, 60)
        assert got == list(range(1, 2001))
        deadline = time.monotonic() + 10
        while b"stream.dropped" not in sqlite_server.log.read_bytes():
            assert time.monotonic() < deadline, "the stuck stream was never let go"
            await asyncio.sleep(0.1)
    finally:
        stuck.close()
