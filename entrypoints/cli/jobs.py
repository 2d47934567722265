"""`chute jobs list|show|events|cancel|retry`: the jobs of a chute server, over HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from uuid import UUID

from chute.adapters.remote import RemoteEngine
from chute.application import BulkOutcome, JobSelection, JobSort
from chute.entrypoints.cli import render
from chute.entrypoints.cli.client import (
    Exit,
    UsageError,
    add_connection,
    add_json,
    run,
)
from chute.entrypoints.cli.filters import add_filters, choices, has_filters, job_filter, one_of

MAX_IDS = 1000  # the bulk routes' limit on ids in one call
BULK_LIMIT = 1000  # jobs a bulk call by filter acts on; the command calls again while `more`


def add_parser(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="list, show, cancel and retry jobs on a server")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="list jobs, newest first unless --sort")
    add_filters(listing)
    listing.add_argument(
        "--sort",
        type=one_of(JobSort),
        default=JobSort.NEWEST,
        help=choices("order", JobSort) + " (default -created_at)",
    )
    listing.add_argument("--limit", type=_page_size, default=50, help="jobs a page (1-200)")
    listing.add_argument(
        "--all",
        action="store_true",
        help="every matching job, page after page (--json: a job a line)",
    )
    for name, text in (("show", "one job"), ("events", "a job's status changes")):
        one = actions.add_parser(name, help=text)
        one.add_argument("job_id", type=job_id, metavar="ID")
    for name, text in (
        ("cancel", "cancel jobs"),
        ("retry", "queue failed or cancelled jobs again"),
    ):
        bulk = actions.add_parser(name, help=f"{text}: by id, or every job the filters select")
        bulk.add_argument("job_ids", nargs="*", type=job_id, metavar="ID")
        add_filters(bulk)
        bulk.add_argument("--yes", action="store_true", help="act by filter without asking")
    for parser in actions.choices.values():
        add_connection(parser)
        add_json(parser)


def job_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (a UUID)") from None


def _page_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 200:
        raise argparse.ArgumentTypeError("must be between 1 and 200")
    return value


def jobs(args: argparse.Namespace) -> int:
    action = {
        "list": _list,
        "show": _show,
        "events": _events,
        "cancel": _bulk,
        "retry": _bulk,
    }[args.action]
    return run(f"jobs {args.action}", lambda engine: action(engine, args), args)


async def _list(engine: RemoteEngine, args: argparse.Namespace) -> int:
    filt = job_filter(args)
    if args.all:
        return await _list_all(engine, args)
    page = await engine.list_jobs(filter=filt, sort=args.sort, limit=args.limit)
    if args.json:
        render.print_json(
            {
                "items": [render.job_json(job) for job in page.items],
                "total": page.total,
                "total_exact": page.total_exact,
                "next_cursor": page.next_cursor,
            }
        )
    else:
        render.show(render.jobs_table(page.items))
        shown = f"{len(page.items)} of {page.total}{'' if page.total_exact else '+'}"
        more = " (--all for every one)" if page.next_cursor else ""
        render.err.print(f"{shown} jobs{more}")
    return Exit.OK


async def _list_all(engine: RemoteEngine, args: argparse.Namespace) -> int:
    count = 0
    async for job in engine.iter_jobs(
        filter=job_filter(args), sort=args.sort, page_size=args.limit
    ):
        if args.json:
            render.print_json_line(render.job_json(job))
        else:  # a line a job as they come: a table would wait for the last page
            if count == 0:
                print("\t".join(render.JOB_COLUMNS))
            print("\t".join(render.job_row(job)))
        count += 1
    if not args.json:
        render.err.print(f"{count} jobs")
    return Exit.OK


async def _show(engine: RemoteEngine, args: argparse.Namespace) -> int:
    job = await engine.get_job(args.job_id)
    if args.json:
        render.print_json(render.job_json(job))
    else:
        render.show(render.job_details(job))
    return Exit.OK


async def _events(engine: RemoteEngine, args: argparse.Namespace) -> int:
    events = await engine.list_job_events(args.job_id)
    if args.json:
        render.print_json({"items": [render.event_json(e) for e in events]})
    else:
        render.show(render.events_table(events))
    return Exit.OK


async def _bulk(engine: RemoteEngine, args: argparse.Namespace) -> int:
    if args.job_ids and has_filters(args):
        raise UsageError("give job ids or filters, not both")
    if not args.job_ids and not has_filters(args):
        raise UsageError("give job ids, or filters (--status, --queue, ...) to select jobs")
    if len(args.job_ids) > MAX_IDS:
        raise UsageError(f"at most {MAX_IDS} ids at once")
    if len(args.job_ids) == 1:
        return await _one(engine, args, args.job_ids[0])
    act = engine.cancel_jobs if args.action == "cancel" else engine.retry_jobs
    if args.job_ids:
        outcome = await act(JobSelection(ids=tuple(args.job_ids)))
        return _report(args, outcome, calls=1)
    if not args.yes and not _confirmed(args):
        print(f"chute jobs {args.action}: not confirmed; nothing changed", file=sys.stderr)
        return Exit.FAILED
    selection = JobSelection(filter=job_filter(args), limit=BULK_LIMIT)
    total, calls = BulkOutcome(0, 0, 0, True), 0
    while total.more:  # each call acts on the next jobs the filter selects
        outcome = await act(selection)
        calls += 1
        total = BulkOutcome(
            total.matched + outcome.matched,
            total.changed + outcome.changed,
            total.unchanged + outcome.unchanged,
            outcome.more and outcome.changed > 0,  # no change: calling again cannot help
        )
    return _report(args, total, calls)


async def _one(engine: RemoteEngine, args: argparse.Namespace, job_id: UUID) -> int:
    """One job, by the single-job use case: an unknown id (exit 3) or a job that cannot
    change so (exit 1) is an error the user sees, not an `unchanged` count."""
    if args.action == "cancel":
        job = (await engine.cancel_job(job_id)).job
    else:
        job = await engine.retry_job(job_id)
    if args.json:
        render.print_json(render.job_json(job))
    else:
        render.out.print(f"{job.id} is {job.status}")
    return Exit.OK


def _confirmed(args: argparse.Namespace) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(f"{args.action} by filter: add --yes to confirm (stdin is no terminal)")
    answer = input(f"{args.action} every job these filters select? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _report(args: argparse.Namespace, outcome: BulkOutcome, calls: int) -> int:
    if args.json:
        render.print_json(
            {
                "matched": outcome.matched,
                "changed": outcome.changed,
                "unchanged": outcome.unchanged,
                "calls": calls,
            }
        )
    else:
        verb = "cancelled" if args.action == "cancel" else "retried"
        render.out.print(
            f"{verb} {outcome.changed} of {outcome.matched} matched jobs "
            f"({outcome.unchanged} unchanged)"
        )
    return Exit.OK
