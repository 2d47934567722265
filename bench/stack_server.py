"""`chute serve`, or the no-op app, on another server stack, for `bench/stack.py`.

    BENCH_STACK=uvloop+httptools python -m bench.stack_server serve --port 8000
    BENCH_STACK=uvloop+httptools python -m bench.stack_server noop --port 8001
    BENCH_STACK=granian python -m bench.stack_server serve --port 8000

The uvicorn stacks run `chute serve` itself with only uvicorn's event loop and HTTP
parser swapped, so that everything else is what a user runs. `granian` serves the same
app (built as `chute serve` builds it: SQLite migrated, storage checked, logging set
up) on granian's Rust HTTP server, one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

DEFAULT = "asyncio+h11"  # what `chute serve` runs
UVICORN_STACKS = {
    "asyncio+h11": {"loop": "asyncio", "http": "h11"},
    "uvloop+h11": {"loop": "uvloop", "http": "h11"},
    "asyncio+httptools": {"loop": "asyncio", "http": "httptools"},
    "uvloop+httptools": {"loop": "uvloop", "http": "httptools"},
}
STACKS = (*UVICORN_STACKS, "granian")


def main() -> int:
    stack = os.environ.get("BENCH_STACK", DEFAULT)
    parser = argparse.ArgumentParser(prog="python -m bench.stack_server")
    parser.add_argument("app", choices=["serve", "noop"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if stack == "granian":
        return _granian(args.app, args.port)
    import uvicorn

    options = UVICORN_STACKS[stack]
    run = uvicorn.run

    def swapped(app: Any, **kwargs: Any) -> None:
        kwargs |= options
        if options["http"] != "h11":
            kwargs.pop("h11_max_incomplete_event_size", None)
        run(app, **kwargs)

    uvicorn.run = swapped  # `chute serve` calls uvicorn.run
    if args.app == "noop":
        from bench import noop_app

        sys.argv = [sys.argv[0], "--port", str(args.port)]
        return noop_app.main()
    from chute.entrypoints import cli

    return int(cli.main(["serve", "--port", str(args.port)]))


def _granian(app: str, port: int) -> int:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    target = "bench.stack_server:chute_app" if app == "serve" else "bench.noop_app:app"
    if app == "serve":
        _prepare()
    server = Granian(
        target,
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        loop=Loops.asyncio,
        log_enabled=False,
    )
    server.serve()
    return 0


def _prepare() -> None:
    """What `chute serve` does before it serves: migrate SQLite, check the storage."""
    from chute.adapters.sqlalchemy import upgrade
    from chute.entrypoints.cli.startup import check_storage
    from chute.entrypoints.settings import Settings

    settings = Settings()
    if settings.is_sqlite:
        asyncio.run(upgrade(settings.database_url))
    asyncio.run(check_storage(settings))


def __getattr__(name: str) -> Any:
    """`chute_app`: chute's app as `chute serve` builds it, made when granian asks."""
    if name != "chute_app":
        raise AttributeError(name)
    from chute.entrypoints.bootstrap import build_container
    from chute.entrypoints.cli.serve import tune_garbage_collector
    from chute.entrypoints.http.app import create_app
    from chute.entrypoints.logging import configure_logging
    from chute.entrypoints.settings import Settings

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    app = create_app(build_container(settings))
    tune_garbage_collector()
    return app


if __name__ == "__main__":
    raise SystemExit(main())
