"""The `chute` command, one module per subcommand: `serve`, `migrate`, `worker`, `purge`,
`keygen`, which run with the settings read from the environment (`keygen` reads none,
so that it works while they are being fixed); and the client commands `submit`, `jobs`,
`queues`, `watch`, which talk to a chute server over HTTP and read no server settings
(no database, no storage): only CHUTE_URL and CHUTE_API_KEY (see `client`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from types import ModuleType
from typing import Any

SERVER_COMMANDS = ("serve", "migrate", "worker", "purge", "keygen")
# The client commands read no settings, so that they run where none are set; and they
# import none of the server's modules (the app, the database, the detectors), so that
# they start in a fraction of a second.
CLIENT_COMMANDS = ("submit", "jobs", "queues", "watch")


def _module(name: str) -> ModuleType:
    return import_module(f"chute.entrypoints.cli.{name}")


def parser(names: Sequence[str] = SERVER_COMMANDS + CLIENT_COMMANDS) -> argparse.ArgumentParser:
    """The `chute` command's parser, with the subcommands `names`."""
    root = argparse.ArgumentParser(
        prog="chute",
        description="Job orchestration for content pipelines. Settings come from "
        "CHUTE_* environment variables (see docs/operations.md); the client commands "
        "(submit, jobs, queues, watch) read only CHUTE_URL and CHUTE_API_KEY "
        "(see docs/cli.md).",
    )
    if any(n in SERVER_COMMANDS for n in names):
        from chute.entrypoints.bootstrap import chute_version

        root.add_argument("--version", action="version", version=f"chute {chute_version()}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in names:
        _module(name).add_parser(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """The `chute` console script."""
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] and given[0] in CLIENT_COMMANDS:
        args = parser([given[0]]).parse_args(given)
        command: Callable[[argparse.Namespace], int] = getattr(_module(args.command), args.command)
        return command(args)
    args = parser().parse_args(given)
    if args.command == "keygen":
        return int(_module("keygen").print_new_key())
    return _run_server_command(args)


def configure_logging(log_format: Any, level: str) -> None:
    """chute's logging, imported only by the commands that log (not the client ones)."""
    from chute.entrypoints.logging import configure_logging as configure

    configure(log_format, level)


def _run_server_command(args: argparse.Namespace) -> int:
    from chute.adapters.s3 import settle
    from chute.entrypoints.settings import Settings, setting_errors
    from pydantic import ValidationError

    try:
        settings = Settings()
    except ValidationError as exc:
        lines = "\n".join(f"  {line}" for line in setting_errors(exc))
        print(f"chute: invalid settings:\n{lines}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    run: Any = getattr(_module(args.command), args.command)
    try:
        return int(run(args, settings))
    finally:
        settle()  # an S3 client's threads must be done before the interpreter ends
