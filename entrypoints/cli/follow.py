"""Jobs followed live from the server's stream: `chute watch`, and `chute submit --wait`
until every job it made has ended."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any
from uuid import UUID

from chute.adapters.remote import RemoteEngine, StreamEvent
from chute.application import JobFilter, JobSort
from chute.domain import Job, JobStatus
from chute.entrypoints.cli import render
from chute.entrypoints.http.values import rfc3339

TERMINAL = frozenset(status for status in JobStatus if status.is_terminal)
MAX_STREAM_IDS = 100  # job ids a stream's query names; more would make a very long URL


def describe(item: StreamEvent) -> str:
    """One line for a status change or a progress report of the stream."""
    stamp = item.at.astimezone().strftime("%H:%M:%S")
    if item.event is not None:
        change = item.event
        detail = f"  {change.detail}" if change.detail else ""
        return (
            f"{stamp}  {item.job_id}  {change.from_status or 'new'} -> {change.to_status}{detail}"
        )
    shown = f"{item.progress}%" if item.progress is not None else ""
    return f"{stamp}  {item.job_id}  progress {shown} {item.progress_message or ''}".rstrip()


def event_json(item: StreamEvent) -> dict[str, Any]:
    """A stream item as the stream's own data: a status change with its job, or a
    progress report."""
    if item.event is not None and item.job is not None:
        return {
            "event": "job",
            "event_id": item.event_id,
            "job_id": str(item.job_id),
            **render.event_json(item.event),
            "job": render.job_json(item.job),
        }
    return {
        "event": "progress",
        "job_id": str(item.job_id),
        "progress": item.progress,
        "progress_message": item.progress_message,
        "at": rfc3339(item.at),
    }


async def until_ended(
    engine: RemoteEngine, jobs: Iterable[Job], show: Callable[[StreamEvent], None]
) -> dict[UUID, Job]:
    """Every job of `jobs` as it ended, once all have: from the stream as they change,
    and from the list of ended jobs, read after the stream opened, for those that ended
    before it did (a stream sends only what is committed after it opens)."""
    ended = {job.id: job for job in jobs if job.status in TERMINAL}
    waiting = {job.id: job for job in jobs if job.status not in TERMINAL}
    if not waiting:
        return ended
    done = asyncio.Event()

    def end(job: Job) -> None:
        if waiting.pop(job.id, None) is not None:
            ended[job.id] = job
        if not waiting:
            done.set()

    opened = asyncio.Event()

    async def from_stream() -> None:
        ids = tuple(waiting) if len(waiting) <= MAX_STREAM_IDS else ()
        queues = () if ids else tuple({job.queue for job in waiting.values()})
        async for item in engine.stream(job_ids=ids, queues=queues, opened=opened.set):
            if item.job_id not in waiting:
                continue
            show(item)
            # By the event, not the job: the job as the server read it may show a later
            # change already, whose line is still to come.
            if item.event is not None and item.job is not None:
                if item.event.to_status in TERMINAL:
                    end(item.job)

    async def from_list() -> None:
        # Once, when the stream is open: what ended before it opened never comes on it,
        # and what ends after does (a dropped connection resumes by its last event id).
        await opened.wait()
        since = min(job.created_at for job in waiting.values())
        queues = frozenset(job.queue for job in waiting.values())
        ended = JobFilter(statuses=TERMINAL, created_after=since, queues=queues)
        async for job in engine.iter_jobs(filter=ended, sort=JobSort.OLDEST):
            end(job)

    tasks = [asyncio.create_task(from_stream()), asyncio.create_task(from_list())]
    try:
        await _first_of(done, tasks)
    finally:
        for task in tasks:
            task.cancel()
        # `wait`, not `await`: their cancellation is not ours to raise (a suppressed
        # CancelledError would also swallow a Ctrl-C that cancels this task).
        await asyncio.wait(tasks)
    return ended


async def _first_of(done: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Wait until `done` is set; a task that fails raises its error here."""
    waiter = asyncio.create_task(done.wait())
    try:
        while not done.is_set():
            finished, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                if task is not waiter and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            tasks[:] = [task for task in tasks if not task.done()]
    finally:
        waiter.cancel()
