"""`chute watch`: the status changes (and progress) of a server's jobs, a line each, live,
until Ctrl-C."""

from __future__ import annotations

import argparse
from typing import Any

from chute.adapters.remote import RemoteEngine
from chute.domain import JobStatus
from chute.entrypoints.cli import follow, render
from chute.entrypoints.cli.client import Exit, add_connection, add_json, run
from chute.entrypoints.cli.filters import add_metadata_filter, one_of
from chute.entrypoints.cli.jobs import job_id


def add_parser(commands: Any) -> None:
    watch = commands.add_parser("watch", help="print jobs' status changes live, until Ctrl-C")
    watch.add_argument(
        "--job",
        action="append",
        type=job_id,
        default=[],
        metavar="ID",
        help="only this job (repeatable)",
    )
    watch.add_argument(
        "--queue",
        action="append",
        default=[],
        metavar="NAME",
        help="only jobs of this queue (repeatable)",
    )
    watch.add_argument(
        "--status",
        action="append",
        type=one_of(JobStatus),
        default=[],
        metavar="STATUS",
        help="only changes to this status (repeatable)",
    )
    add_metadata_filter(watch)
    add_connection(watch)
    add_json(watch)


def watch(args: argparse.Namespace) -> int:
    return run("watch", lambda engine: _watch(engine, args), args, interrupted=Exit.OK)


async def _watch(engine: RemoteEngine, args: argparse.Namespace) -> int:
    stream = engine.stream(
        job_ids=tuple(args.job),
        queues=tuple(args.queue),
        statuses=tuple(args.status),
        metadata=dict(args.metadata) or None,
    )
    async for event in stream:
        if args.json:
            render.print_json_line(follow.event_json(event))
        else:
            print(follow.describe(event), flush=True)
    return Exit.OK
