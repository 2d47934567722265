"""How the client commands show what the server answered: tables for people (rich), the
API's own JSON shapes for scripts (`--json`)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from chute.application import QueueView
from chute.domain import Job, JobEvent
from chute.entrypoints.http.schemas.jobs import JobEventResponse, JobResponse
from chute.entrypoints.http.schemas.queues import QueueResponse
from rich import box
from rich.console import Console
from rich.table import Table

MIN_TABLE_WIDTH = 120


def _width() -> int:
    """stdout's width: a terminal's, but at least `MIN_TABLE_WIDTH` (narrower, rich cuts
    ids short and drops columns; the terminal wraps the lines instead, losing nothing).
    Not a terminal (a pipe, a file): as wide as a table's lines are, never folded."""
    if not sys.stdout.isatty():
        return 10_000
    return max(shutil.get_terminal_size().columns, MIN_TABLE_WIDTH)


out = Console(soft_wrap=True, width=_width())  # no colour when not a terminal
err = Console(stderr=True)


JOB_COLUMNS = ("id", "status", "queue", "priority", "source", "type", "created")
MIN_WIDTHS = {"source": 12, "type": 12}  # squeezed, but never to nothing


def job_json(job: Job) -> dict[str, Any]:
    """A job as `GET /api/v1/jobs/{id}` shows it."""
    return JobResponse.of(job).model_dump(mode="json")


def event_json(event: JobEvent) -> dict[str, Any]:
    return JobEventResponse.of(event).model_dump(mode="json")


def queue_json(view: QueueView) -> dict[str, Any]:
    return QueueResponse.of(view).model_dump(mode="json")


def show(table: Table) -> None:
    out.print(table)


def print_json(document: Any) -> None:
    """One JSON document on stdout (not through rich: nothing may wrap or colour it)."""
    sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")


def print_json_line(document: Any) -> None:
    sys.stdout.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")


def source_of(job: Job) -> str:
    """What a person calls the job's content: its file name, or the reference."""
    return job.file_name if job.source_type == "upload" and job.file_name else job.source_uri


def jobs_table(jobs: Iterable[Job], *, title: str | None = None) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD)  # no rules between columns: ids are long
    for name in JOB_COLUMNS:
        table.add_column(name, no_wrap=name not in ("source", "type"), overflow="fold",
                         min_width=MIN_WIDTHS.get(name))  # fmt: skip
    for job in jobs:
        table.add_row(*job_row(job))
    return table


def job_row(job: Job) -> tuple[str, ...]:
    """A job's cells under `JOB_COLUMNS`."""
    return (
        str(job.id), job.status, job.queue, job.priority, source_of(job),
        job.mime_type or "", when(job.created_at),
    )  # fmt: skip


def job_details(job: Job) -> Table:
    """One job, a field a line."""
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in job_json(job).items():
        if value is None or value == {}:
            continue
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value)
        table.add_row(key, text)
    return table


def events_table(events: Iterable[JobEvent]) -> Table:
    table = Table()
    for name in ("at", "from", "to", "actor", "detail"):
        table.add_column(name, overflow="fold")
    for e in events:
        table.add_row(when(e.at), e.from_status or "", e.to_status, e.actor, e.detail or "")
    return table


def queues_table(views: Iterable[QueueView]) -> Table:
    table = Table()
    columns = (
        "queue",
        "paused",
        "limit",
        "pending",
        "scheduled",
        "running",
        "cancelling",
        "done 1h",
        "failed 1h",
        "oldest pending",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("queue", "paused") else "right")
    for q in views:
        c = q.counts
        table.add_row(
            q.name,
            "yes" if q.paused else "no",
            "-" if q.concurrency_limit is None else str(q.concurrency_limit),
            str(c.pending),
            str(c.scheduled),
            str(c.running),
            str(c.cancelling),
            str(c.completed_last_hour),
            str(c.failed_last_hour),
            when(c.oldest_pending_at) if c.oldest_pending_at else "",
        )
    return table


def when(moment: datetime) -> str:
    """A time as the user's clock shows it, to the second."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
