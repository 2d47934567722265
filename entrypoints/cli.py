"""The `chute` command: `chute serve` runs the HTTP service, `chute migrate` the migrations,
`chute worker` a worker (see `worker_cli`), `chute purge` the retention (see `purge_cli`),
`chute keygen` a new API key."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Callable, Sequence

import uvicorn
from alembic.runtime.migration import MigrationContext
from chute.adapters.sqlalchemy import create_engine_for, upgrade
from chute.entrypoints.app import create_app
from chute.entrypoints.container import build_container
from chute.entrypoints.keys import keygen
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.purge_cli import add_parser as add_purge_parser
from chute.entrypoints.purge_cli import purge
from chute.entrypoints.settings import Settings
from chute.entrypoints.worker_cli import add_parser as add_worker_parser
from chute.entrypoints.worker_cli import worker
from pydantic import ValidationError

Command = Callable[[argparse.Namespace, Settings], int]


def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the HTTP service until SIGINT/SIGTERM."""
    if settings.is_sqlite:
        # An embedded database belongs to this process: bring it up to date so that a
        # fresh machine just works. A shared PostgreSQL is migrated by its operators
        # (`chute migrate`), never by whichever API process starts first.
        asyncio.run(upgrade(settings.database_url))
    app = create_app(build_container(settings))
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=args.host or settings.host,
        port=settings.port if args.port is None else args.port,
        log_config=None,  # keep chute's logging; `http.request` lines replace the access log
        access_log=False,
        lifespan="on",
        server_header=False,
        # h11, not httptools even when installed: the header limit below is h11's.
        http="h11",
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.limit_concurrency,
    )
    return 0


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


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply every migration to CHUTE_DATABASE_URL and print the revision it is at."""
    revision = asyncio.run(_migrate(settings.database_url))
    print(revision)
    return 0


async def _migrate(url: str) -> str:
    await upgrade(url)
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    return str(revision)


def print_new_key() -> int:
    """`chute keygen`: a new key on the first line (for the client), its digest on the
    second (for CHUTE_API_KEYS). Reads no settings, so that it works while they are
    being fixed."""
    for line in keygen():
        print(line)
    return 0


COMMANDS: dict[str, Command] = {
    "serve": serve,
    "migrate": migrate,
    "worker": worker,
    "purge": purge,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="chute",
        description="Job orchestration for content pipelines. Settings come from "
        "CHUTE_* environment variables (see docs/operations.md).",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("serve", help="run the HTTP API (migrates SQLite first)")
    run.add_argument("--host", help="address to listen on (default: CHUTE_HOST, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default: CHUTE_PORT, 8000)")
    commands.add_parser("migrate", help="apply the database migrations to CHUTE_DATABASE_URL")
    add_worker_parser(commands)
    add_purge_parser(commands)
    commands.add_parser(
        "keygen",
        help="print a new API key, then its sha256: digest line for CHUTE_API_KEYS",
    )
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """The `chute` console script."""
    args = parser().parse_args(argv)
    if args.command == "keygen":
        return print_new_key()
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"chute: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    return COMMANDS[args.command](args, settings)
