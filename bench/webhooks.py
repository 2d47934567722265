"""`webhooks`: webhook deliveries per second to a local receiver.

One webhook asks for `job.created`; N jobs are created (not timed), each with its
delivery written in its transaction. Then the engine's `deliver_webhooks` is called
until nothing is due, as `chute serve`'s duty calls it, on a SQLite file: it takes each
batch of 50 under a lease, signs and POSTs each delivery (the payload carries the job
as the API shows it) to a receiver in another process, and records each result.

Baseline of the same run: the same number of POSTs of the same signed bodies, 50 at a
time, by a plain httpx loop to the same receiver, with nothing taken, rendered or
recorded around them. The ratio is what chute's outbox, lease and bookkeeping cost.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
import tempfile
import time
from pathlib import Path

import httpx
from chute.adapters.memory import MemoryFileStore
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.adapters.webhooks import HttpWebhookSender
from chute.application import NewJob, OrchestrationEngine
from chute.domain import SourceType
from chute.domain.webhooks import signature
from chute.entrypoints.http.maintenance import job_json

from bench.core import Context, Figure

BATCH = 50


def run(ctx: Context) -> list[Figure]:
    count = ctx.sizes.webhook_deliveries
    port = _free_port()
    receiver = multiprocessing.get_context("spawn").Process(target=_receive, args=(port,))
    receiver.start()
    try:
        _wait_listening(port)
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
            chute_rate, baseline_rate = asyncio.run(_measure(Path(tmp), port, count))
    finally:
        receiver.terminate()
        receiver.join(10)
    return [
        Figure(
            "webhooks.sqlite.deliveries_per_s",
            chute_rate,
            "1/s",
            baseline_rate,
            "plain httpx POSTs/s, 50 at a time",
            note=f"{count} signed deliveries of job.created to a receiver on 127.0.0.1",
        )
    ]


async def _measure(folder: Path, port: int, count: int) -> tuple[float, float]:
    url = f"sqlite+aiosqlite:///{folder}/chute.db"
    await upgrade(url)
    database = SqlDatabase(create_engine_for(url))
    sender = HttpWebhookSender(allow_private=True)
    engine = OrchestrationEngine(
        uow=database,
        files=MemoryFileStore(),
        detectors={},
        clock=SystemClock(),
        ids=UuidV7Generator(),
        webhook_sender=sender,
    )
    try:
        hook = await engine.create_webhook(f"http://127.0.0.1:{port}/hook", events=["job.created"])
        job = NewJob(source_type=SourceType.URL, source_uri="https://example.org/a.pdf")
        for start in range(0, count, 500):
            await engine.create_jobs([job] * min(500, count - start))
        started = time.perf_counter()
        sent = 0
        while found := await engine.deliver_webhooks(job_json):
            sent += found
        chute_seconds = time.perf_counter() - started
        delivered = await engine.list_webhook_deliveries(hook.id, limit=count)
        assert sent == count and all(d.delivered_at for d in delivered), "not all delivered"
        body = b'{"type":"job.created","timestamp":"2026-12-06T21:00:00.000000Z","data":{}}'
        baseline_seconds = await _plain_posts(port, hook.secret, body, count)
    finally:
        await sender.aclose()
        await database.dispose()
    print(f"   chute {count / chute_seconds:.0f}/s, plain httpx {count / baseline_seconds:.0f}/s")
    return count / chute_seconds, count / baseline_seconds


async def _plain_posts(port: int, secret: str, body: bytes, count: int) -> float:
    url = f"http://127.0.0.1:{port}/hook"
    async with httpx.AsyncClient(timeout=10) as client:

        async def post(n: int) -> None:
            now = int(time.time())
            message_id = f"msg_{n}"
            response = await client.post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "webhook-id": message_id,
                    "webhook-timestamp": str(now),
                    "webhook-signature": signature(secret, message_id, now, body),
                },
            )
            assert response.status_code == 204

        started = time.perf_counter()
        for start in range(0, count, BATCH):
            await asyncio.gather(*(post(n) for n in range(start, min(start + BATCH, count))))
        return time.perf_counter() - started


def _receive(port: int) -> None:
    """A minimal HTTP/1.1 receiver: reads each request whole and answers 204, keeping the
    connection alive. Fast enough not to be what is measured."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the receiver did not start")
