"""`chute purge`: delete old finished jobs with their events, detections and files.

Safe while chute serves and workers run: it deletes in batches, each batch its own
transaction that skips rows other transactions hold, and only terminal jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from chute.domain import JobStatus
from chute.entrypoints.bootstrap import build_container, engine_of, settled
from chute.entrypoints.cli.startup import StartRefused, claim_storage
from chute.entrypoints.settings import Settings

TERMINAL = frozenset(status for status in JobStatus if status.is_terminal)
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def add_parser(commands: Any) -> None:
    """Add `chute purge` to the `chute` command's subcommands."""
    purge = commands.add_parser(
        "purge", help="delete old finished jobs with their events, detections and files"
    )
    purge.add_argument(
        "--older-than",
        required=True,
        type=age,
        metavar="AGE",
        help="last changed longer ago than this: 30d, 12h, 90m, 45s, 2w",
    )
    purge.add_argument(
        "--status",
        type=statuses,
        default=TERMINAL,
        metavar="LIST",
        help="comma-separated: completed,cancelled,failed (the default)",
    )
    purge.add_argument("--batch-size", type=int, default=500, help="jobs per transaction")


def age(text: str) -> timedelta:
    found = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if not found:
        raise argparse.ArgumentTypeError("an age like 30d, 12h, 90m, 45s or 2w")
    return timedelta(**{UNITS[found[2]]: int(found[1])})


def statuses(text: str) -> frozenset[JobStatus]:
    chosen = set()
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name not in TERMINAL:
            raise argparse.ArgumentTypeError(
                f"{name!r}: only finished jobs are purged (completed, cancelled, failed)"
            )
        chosen.add(JobStatus(name))
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one status")
    return frozenset(chosen)


def purge(args: argparse.Namespace, settings: Settings) -> int:
    """Run `chute purge` and print how many jobs it deleted."""
    try:
        count = asyncio.run(_purge(args, settings))
    except StartRefused as e:
        print(f"chute purge: {e}", file=sys.stderr)
        return e.exit_code
    print(f"purged {count} jobs")
    return 0


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    container = build_container(settings)
    try:
        engine = await engine_of(container)
        await claim_storage(engine, settings)
        return await engine.purge_jobs(
            older_than=datetime.now(UTC) - args.older_than,
            statuses=args.status,
            batch_size=args.batch_size,
        )
    finally:
        await settled(container.shutdown_resources())
