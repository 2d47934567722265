"""What the client commands (`submit`, `jobs`, `queues`, `watch`) share: the server and
key options, the exit codes, and the one place where an error becomes a message.

The client commands talk to a chute server over HTTP only, through the remote engine
(`chute.adapters.remote.RemoteEngine`), and read no server settings: no database, no
storage. A user error (a bad id, a job that does not exist, a wrong key, a server that
does not answer) is printed as the problem's title and detail, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from enum import IntEnum

import httpx
from chute.adapters.remote import RemoteEngine, Unauthorized, problem_of
from chute.application import (
    InvalidCursor,
    JobNotFound,
    QueueNotFound,
    ServiceUnavailable,
    ValidationFailed,
)
from chute.domain import ChuteError, InvalidValue

DEFAULT_SERVER = "http://127.0.0.1:8000"  # where `chute serve` listens by default


class Exit(IntEnum):
    """The exit codes of the client commands (docs/cli.md#exit-codes)."""

    OK = 0
    FAILED = 1  # a job failed or was cancelled (--wait), or the server refused an action
    USAGE = 2  # bad arguments or invalid input (the server's 422 too)
    NOT_FOUND = 3  # no such job or queue
    UNAUTHORIZED = 4  # no key, or a wrong one
    UNREACHABLE = 5  # the server does not answer, or answers that it cannot work (503)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it), but for `watch`


class UsageError(Exception):
    """Input the command refuses before asking the server: exit code 2."""


def add_connection(parser: argparse.ArgumentParser) -> None:
    """The options every client command takes: where the server is, and its key."""
    # SUPPRESS: a subcommand's parser must not put its default over the value given to
    # its parent's (`chute queues --server URL pause q`); `options` fills in the rest.
    parser.add_argument(
        "--server",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=f"the chute server (default: CHUTE_URL, or {DEFAULT_SERVER})",
    )
    parser.add_argument(
        "--api-key",
        default=argparse.SUPPRESS,
        metavar="KEY",
        help="the API key (default: CHUTE_API_KEY; none for an open server)",
    )


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON, for scripts"
    )


def options(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with the connection options and `--json` that were not given set from the
    environment (CHUTE_URL, CHUTE_API_KEY) or their defaults."""
    args.server = getattr(args, "server", None) or os.environ.get("CHUTE_URL") or DEFAULT_SERVER
    args.api_key = getattr(args, "api_key", None) or os.environ.get("CHUTE_API_KEY") or None
    args.json = getattr(args, "json", False)
    return args


def connect(args: argparse.Namespace) -> RemoteEngine:
    return RemoteEngine(args.server, args.api_key)


def run(
    command: str,
    work: Callable[[RemoteEngine], Awaitable[int]],
    args: argparse.Namespace,
    *,
    interrupted: int = Exit.INTERRUPTED,
) -> int:
    """Run `work` on a remote engine for `args`; its exit code, or the one of its error
    (`interrupted` for Ctrl-C: 0 for a command that runs until one stops it)."""
    options(args)

    async def main() -> int:
        async with connect(args) as engine:
            return await work(engine)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return interrupted
    except Exception as e:
        code, message = describe(e, args.server)
        if code is None:
            raise  # not a user error: a bug, whose traceback must be seen
        print(f"chute {command}: {message}", file=sys.stderr)
        return code


def describe(error: BaseException, server: str) -> tuple[int | None, str]:
    """The exit code and message of an error a client command may meet; no code for a
    bug."""
    if isinstance(error, UsageError):
        return Exit.USAGE, str(error)
    if isinstance(error, httpx.TransportError):
        return Exit.UNREACHABLE, f"cannot reach the chute server at {server}: {_reason(error)}"
    if isinstance(error, OSError):  # a file to upload that cannot be read
        return Exit.USAGE, _reason(error)
    if isinstance(error, Unauthorized):
        return Exit.UNAUTHORIZED, problem(error) + " (set --api-key or CHUTE_API_KEY)"
    if isinstance(error, JobNotFound | QueueNotFound):
        return Exit.NOT_FOUND, problem(error)
    if isinstance(error, ValidationFailed | InvalidValue | InvalidCursor):
        return Exit.USAGE, problem(error)
    if isinstance(error, ServiceUnavailable):
        return Exit.UNREACHABLE, problem(error)
    if isinstance(error, ChuteError):
        return Exit.FAILED, problem(error)
    return None, ""


def problem(error: BaseException) -> str:
    """The problem's title and detail, as the remote engine carries them."""
    found = problem_of(error)
    title = found.title if found else None
    detail = (found.detail if found else None) or str(error)
    text = f"{title}: {detail}" if title and title != detail else str(detail)
    for field in getattr(error, "errors", None) or ():
        loc = ".".join(str(part) for part in getattr(field, "loc", ()))
        text += f"\n  {loc}: {getattr(field, 'msg', field)}"
    return text


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
