"""`streams`: 1,000 stream clients while jobs complete as fast as workers complete them.

One `chute serve` on PostgreSQL; jobs created beforehand; then the clients open
`/api/v1/stream?status=completed` (raw sockets from this process), and two `chute
worker` processes (no-op processor, 4 slots each) complete every job. A delivery's
delay is when a client read the change minus the change's `at` (the time the worker's
transaction took; one machine, one clock). p50 and p99 over every delivery, each
client's count (every one must get every completion), the server's RSS with the
clients connected and at the end, against before they connected.

Baseline in the same run: the same load with one client. The clients' own reading
runs on the same two cores, and adds to the delays of many clients: the figure is an
upper bound.
"""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench.core import Context, Figure, Target
from bench.postgres import fresh_database
from bench.procs import Server, chute, chute_env, chute_server, migrate
from bench.runs import request

AT = re.compile(rb'"to_status": "completed", "at": "([^"]+)"')
REQUEST = b"GET /api/v1/stream?status=completed HTTP/1.1\r\nHost: bench\r\n\r\n"


def run(ctx: Context) -> list[Figure]:
    clients, jobs = ctx.sizes.stream_clients, ctx.sizes.stream_jobs
    with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
        folder = Path(tmp)
        one = asyncio.run(_round(ctx, folder, 1, jobs))
        many = asyncio.run(_round(ctx, folder, clients, jobs))
    note = f"{jobs} completions to each of {clients} clients; baseline: 1 client"
    return [
        Figure("streams.delay_p50", many["p50"], "ms", one["p50"], "1 client p50", note=note),
        Figure("streams.delay_p99", many["p99"], "ms", one["p99"], "1 client p99", note=note),
        Figure(
            "streams.server_rss_growth",
            many["rss_growth"],
            "MiB",
            one["rss_growth"],
            "1 client",
            target=Target("value", "<=", 256),
            note=f"{clients} streams open, after every delivery",
        ),
        Figure(
            "streams.deliveries_per_s",
            many["rate"],
            "/s",
            one["rate"],
            "1 client",
            note="completions x clients over the time from the first to the last",
        ),
    ]


async def _round(ctx: Context, folder: Path, clients: int, jobs: int) -> dict[str, float]:
    url = await fresh_database(ctx.postgres(), f"bench_streams_{clients}")
    await asyncio.to_thread(migrate, url)
    storage = Path(tempfile.mkdtemp(prefix="storage-", dir=folder))
    with chute_server(folder, url, storage) as server:
        _create(server, jobs)
        before = server.memory_kib() / 1024
        streams = [await _open(server) for _ in range(clients)]
        delays: list[list[float]] = [[] for _ in streams]
        readers = [
            asyncio.create_task(_read(reader, jobs, delays[n]))
            for n, (reader, _) in enumerate(streams)
        ]
        connected = server.memory_kib() / 1024
        env = chute_env(url, storage)
        argv = chute("worker", "--processor", "bench.processors:noop", "--slots", "4")
        log = (folder / f"streams-workers-{clients}.log").open("wb")
        started = time.monotonic()
        workers = [
            await asyncio.create_subprocess_exec(*argv, env=env, stdout=log, stderr=log)
            for _ in range(2)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*readers), 300)
        finally:
            for worker in workers:
                worker.terminate()
            await asyncio.gather(*(w.wait() for w in workers))
            log.close()
            for _, writer in streams:
                writer.close()
        elapsed = time.monotonic() - started
        after = server.memory_kib() / 1024
    every = sorted(d for one in delays for d in one)
    if any(len(one) != jobs for one in delays):
        raise RuntimeError("a client missed completions")
    print(
        f"   {clients} client(s): RSS {before:.0f} -> {connected:.0f} (connected) -> "
        f"{after:.0f} MiB; {len(every)} deliveries in {elapsed:.1f} s",
        flush=True,
    )
    return {
        "p50": statistics.median(every),
        "p99": every[min(len(every) - 1, round(0.99 * (len(every) - 1)))],
        "rss_growth": max(connected, after) - before,
        "rate": len(every) / elapsed,
    }


def _create(server: Server, jobs: int) -> None:
    body = json.dumps(
        {"jobs": [{"source_type": "url", "source_uri": "https://example.org/a.pdf"}] * jobs}
    ).encode()
    status, answer = request(server, "POST", "/api/v1/jobs/batch", body)
    if status != 201:
        raise RuntimeError(f"batch: {status} {answer[:300]!r}")


async def _open(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, limit=1 << 20)
    writer.write(REQUEST)
    await writer.drain()
    while (line := await reader.readline()) != b": stream opened\n":
        if not line:
            raise RuntimeError("the stream closed before it opened")
    return reader, writer


async def _read(reader: asyncio.StreamReader, jobs: int, delays: list[float]) -> None:
    while len(delays) < jobs:
        line = await reader.readline()
        if not line:
            raise RuntimeError("a stream ended early")
        if line.startswith(b"data:"):
            now = time.time()
            found = AT.search(line)
            if found:
                at = datetime.fromisoformat(found.group(1).decode().replace("Z", "+00:00"))
                delays.append((now - at.timestamp()) * 1000)
