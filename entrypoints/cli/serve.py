"""`chute serve`: the HTTP service (SQLite is migrated first; PostgreSQL never is).

It starts only on a storage that belongs to its database (see `startup`), and a stop by
SIGTERM or SIGINT, which uvicorn drains gracefully, ends with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
from typing import Any

import uvicorn
from chute.adapters.sqlalchemy import upgrade
from chute.entrypoints.bootstrap import build_container
from chute.entrypoints.cli.startup import StartRefused, check_storage
from chute.entrypoints.http.app import create_app
from chute.entrypoints.http.protocol import BoundedHttpToolsProtocol
from chute.entrypoints.settings import Settings


def add_parser(commands: Any) -> None:
    run = commands.add_parser("serve", help="run the HTTP API (migrates SQLite first)")
    run.add_argument("--host", help="address to listen on (default: CHUTE_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default: CHUTE_PORT, 8000)")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the HTTP service until SIGINT/SIGTERM."""
    if settings.is_sqlite:
        # An embedded database belongs to this process: bring it up to date so that a
        # fresh machine just works. A shared PostgreSQL is migrated by its operators
        # (`chute migrate`), never by whichever API process starts first.
        asyncio.run(upgrade(settings.database_url))
    try:
        asyncio.run(check_storage(settings))
    except StartRefused as e:
        print(f"chute serve: {e}", file=sys.stderr)
        return e.exit_code
    app = create_app(build_container(settings))
    tune_garbage_collector()
    return_after_stop_signals()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        **server_options(settings),
    )
    return 0


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for chute's app, but where to listen."""
    return {
        "log_config": None,  # keep chute's logging; `http.request` lines replace the access log
        "access_log": False,
        "lifespan": "on",
        "server_header": False,
        # Chosen by measurement (bench/stack.py, docs/performance.md): httptools with a
        # bound on a head still coming (the limit is h11's setting, which it reads), on
        # asyncio's own loop; uvloop bought nothing here.
        "http": BoundedHttpToolsProtocol,
        "loop": "asyncio",
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.keep_alive_seconds,
        "limit_concurrency": settings.limit_concurrency,
    }


def return_after_stop_signals() -> None:
    """Make SIGTERM and SIGINT end `uvicorn.run` with a return, not a death by signal.

    uvicorn catches them, shuts down gracefully, then raises the signal again for the
    handler it found when it started: the default one would kill the process (exit code
    -15, or a KeyboardInterrupt traceback for SIGINT). This one does nothing, so that the
    command returns 0 and the process exits normally, its clients closed first.
    """
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: None)


def tune_garbage_collector() -> None:
    """Fit the collector to a server: measured under load, it cost 70 µs a request.

    What exists by now (modules, the app and its schemas) lives as long as the process:
    frozen, no collection walks it again. And a collection every 700 new objects (the
    default) walked the thousands that the requests in flight hold, again and again, in
    vain: their garbage goes by reference counting. Every 50,000 is rare enough.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 10, 10)
