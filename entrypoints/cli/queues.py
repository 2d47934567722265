"""`chute queues [pause|resume|limit]`: the queues of a chute server, over HTTP."""

from __future__ import annotations

import argparse
from typing import Any

from chute.adapters.remote import RemoteEngine
from chute.application import QueueChange
from chute.entrypoints.cli import render
from chute.entrypoints.cli.client import Exit, add_connection, add_json, run


def add_parser(commands: Any) -> None:
    queues = commands.add_parser(
        "queues", help="the queues with their counts; pause, resume or limit one"
    )
    actions = queues.add_subparsers(dest="action", metavar="ACTION")
    for name, text in (
        ("pause", "claim no job of the queue until resumed"),
        ("resume", "claim the queue's jobs again"),
    ):
        actions.add_parser(name, help=text).add_argument("name", metavar="NAME")
    limit = actions.add_parser("limit", help="at most N jobs of the queue run at once")
    limit.add_argument("name", metavar="NAME")
    limit.add_argument("limit", type=concurrency, metavar="N|none", help="1 to 10000, or none")
    for parser in (queues, *actions.choices.values()):
        add_connection(parser)
        add_json(parser)


def concurrency(text: str) -> int | None:
    if text.lower() == "none":
        return None
    try:
        return int(text)  # the server checks the range, and says it in its problem
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of jobs, or none") from None


def queues(args: argparse.Namespace) -> int:
    command = f"queues {args.action}" if args.action else "queues"
    return run(command, lambda engine: _queues(engine, args), args)


async def _queues(engine: RemoteEngine, args: argparse.Namespace) -> int:
    if args.action is None:
        views = await engine.list_queues()
        if args.json:
            render.print_json({"items": [render.queue_json(view) for view in views]})
        else:
            render.show(render.queues_table(views))
        return Exit.OK
    change = {
        "pause": QueueChange(paused=True),
        "resume": QueueChange(paused=False),
        "limit": QueueChange(
            concurrency_limit=getattr(args, "limit", None), set_concurrency_limit=True
        ),
    }[args.action]
    view = await engine.update_queue(args.name, change)
    if args.json:
        render.print_json(render.queue_json(view))
    else:
        render.show(render.queues_table([view]))
    return Exit.OK
