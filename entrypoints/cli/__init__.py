"""The `chute` command, one module per subcommand: `serve`, `migrate`, `worker`, `purge`,
`keygen`, which run with the settings read from the environment (`keygen` reads none,
so that it works while they are being fixed); and the client commands `submit`, `jobs`,
`queues`, `watch`, which talk to a chute server over HTTP and read no server settings
(no database, no storage): only CHUTE_URL and CHUTE_API_KEY (see `client`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chute.adapters.s3 import settle
from chute.entrypoints.bootstrap import chute_version
from chute.entrypoints.cli import (
    jobs,
    keygen,
    migrate,
    purge,
    queues,
    serve,
    submit,
    watch,
    worker,
)
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.settings import Settings, setting_errors
from pydantic import ValidationError

Command = Callable[[argparse.Namespace, Settings], int]

COMMANDS: dict[str, Command] = {
    "serve": serve.serve,
    "migrate": migrate.migrate,
    "worker": worker.worker,
    "purge": purge.purge,
}
# The client commands: they read no settings (they may run where none are set).
CLIENT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "submit": submit.submit,
    "jobs": jobs.jobs,
    "queues": queues.queues,
    "watch": watch.watch,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="chute",
        description="Job orchestration for content pipelines. Settings come from "
        "CHUTE_* environment variables (see docs/operations.md).",
    )
    root.add_argument("--version", action="version", version=f"chute {chute_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (serve, migrate, worker, purge, keygen):
        command.add_parser(commands)
    for client in (submit, jobs, queues, watch):
        client.add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """The `chute` console script."""
    args = parser().parse_args(argv)
    if args.command == "keygen":
        return keygen.print_new_key()
    if args.command in CLIENT_COMMANDS:
        return CLIENT_COMMANDS[args.command](args)
    try:
        settings = Settings()
    except ValidationError as exc:
        lines = "\n".join(f"  {line}" for line in setting_errors(exc))
        print(f"chute: invalid settings:\n{lines}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    try:
        return COMMANDS[args.command](args, settings)
    finally:
        settle()  # an S3 client's threads must be done before the interpreter ends
