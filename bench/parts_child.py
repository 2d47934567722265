"""One case of `parts`: creates driven straight into an ASGI app (or the engine), in
a process of its own, printing one JSON line: the CPU time a create cost this process
(every thread: the group commit's writer and aiosqlite's included) and the rate.

    python -m bench.parts_child CASE --requests 6000 --folder /tmp/x

The app is chute's own (`create_app` on a migrated SQLite file, logs as JSON lines
into a file of the folder, as a server's stderr would take them) with one part taken
away by the case; `noop` is the no-op app (bench/noop_app.py). No server: the
connection, the HTTP parser and the socket writes, the same for every case, are not
in these figures (`create` and `stack` measure them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CONCURRENCY = 64  # as wrk's 1x64 shape: 64 requests in flight
WARMUP = 5  # requests per task before the clock starts

# Settings per case; every case but `noop` is chute at its defaults otherwise.
CASES: dict[str, dict[str, str]] = {
    "chute": {},
    "warning": {"CHUTE_LOG_LEVEL": "WARNING"},
    "no_metrics": {"CHUTE_METRICS": "false"},
    "no_middleware": {},
    "stand_in_engine": {},
    "engine": {},
    "noop": {},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--folder", type=Path, required=True)
    args = parser.parse_args()
    folder: Path = args.folder
    os.environ.update(
        CHUTE_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'chute.db'}",
        CHUTE_STORAGE_DIR=str(folder / "storage"),
        CHUTE_LOG_LEVEL="INFO",
        CHUTE_LOG_FORMAT="json",
        CHUTE_METRICS="true",
    )
    os.environ.update(CASES[args.case])
    out = sys.stdout
    sys.stderr = (folder / "log.jsonl").open("w")  # line-buffered, as a server's stderr
    figures = asyncio.run(_run(args.case, args.requests))
    print(json.dumps(figures), file=out, flush=True)


async def _run(case: str, requests: int) -> dict[str, float]:
    from bench.data import create_body

    body = create_body()
    if case == "noop":
        from bench import noop_app

        # An answer of a job's size, as chute's (the no-op answers canned bytes).
        noop_app._bodies[noop_app.canned_name("POST", "/api/v1/jobs")] = b"x" * 900
        return await _drive(lambda: _post(noop_app.app, body), requests)

    from chute.adapters.sqlalchemy import upgrade
    from chute.entrypoints.bootstrap import build_container, engine_of
    from chute.entrypoints.http.app import create_app
    from chute.entrypoints.logging import configure_logging
    from chute.entrypoints.settings import Settings
    from dependency_injector import providers

    from tests.factories import make_new_job

    await upgrade(os.environ["CHUTE_DATABASE_URL"])
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    container = build_container(settings)
    app = create_app(container, maintenance=False)
    if case == "no_middleware":
        app.user_middleware = []  # Starlette builds its stack from this on the first call
    async with app.router.lifespan_context(app):
        engine = await engine_of(container)
        if case == "engine":
            return await _drive(lambda: engine.create_job(make_new_job()), requests)
        if case == "stand_in_engine":
            submission = await engine.create_job(make_new_job())
            container.engine.override(providers.Object(_StandIn(submission)))
        return await _drive(lambda: _post(app, body), requests)


class _StandIn:
    """An engine whose create answers one job made earlier: the HTTP layer alone."""

    def __init__(self, submission: Any) -> None:
        self._submission = submission

    async def create_job(self, new: Any, *, idempotency_key: str | None = None) -> Any:
        return self._submission


async def _post(app: Callable[..., Awaitable[None]], body: bytes) -> None:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/jobs", "raw_path": b"/api/v1/jobs",
        "root_path": "", "query_string": b"", "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # a disconnect, which nothing should wait for
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [201]:
        raise RuntimeError(f"a create was answered {statuses}")


async def _drive(create: Callable[[], Awaitable[Any]], requests: int) -> dict[str, float]:
    async def task(count: int) -> None:
        for _ in range(count):
            await create()

    await asyncio.gather(*(task(WARMUP) for _ in range(CONCURRENCY)))
    each = max(1, requests // CONCURRENCY)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(task(each) for _ in range(CONCURRENCY)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    done = each * CONCURRENCY
    return {"cpu_us": cpu / done * 1e6, "per_s": done / wall, "requests": done}


if __name__ == "__main__":
    main()
