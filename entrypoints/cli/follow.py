"""Jobs followed live from the server's stream: `chute watch`, and `chute submit --wait`
until every job it made has ended."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from chute.adapters.remote import RemoteEngine
from chute.application import JobFilter, JobQuery, JobSort
from chute.domain import Job, JobStatus

TERMINAL = frozenset(status for status in JobStatus if status.is_terminal)
MAX_STREAM_IDS = 100  # job ids a stream's query names; more would make a very long URL
RECONCILE_SECONDS = (1.0, 10.0)  # the first look at the list, then the interval


def describe(event: Any) -> str:
    """One line for a status change or a progress report of the stream."""
    at = getattr(event, "at", None)
    stamp = at.astimezone().strftime("%H:%M:%S") if isinstance(at, datetime) else "--:--:--"
    job_id = getattr(event, "job_id", "")
    if getattr(event, "to_status", None) is not None:
        before = event.from_status or "new"
        detail = f"  {event.detail}" if getattr(event, "detail", None) else ""
        return f"{stamp}  {job_id}  {before} -> {event.to_status}{detail}"
    progress = getattr(event, "progress", None)
    message = getattr(event, "progress_message", None) or ""
    shown = f"{progress}%" if progress is not None else ""
    return f"{stamp}  {job_id}  progress {shown} {message}".rstrip()


async def until_ended(
    engine: RemoteEngine, jobs: Iterable[Job], show: Callable[[Any], None]
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

    async def from_stream() -> None:
        ids = tuple(waiting) if len(waiting) <= MAX_STREAM_IDS else ()
        queues = () if ids else tuple({job.queue for job in waiting.values()})
        async for event in engine.stream(job_ids=ids, queues=queues):
            if getattr(event, "job_id", None) not in waiting:
                continue
            show(event)
            job = getattr(event, "job", None)
            if isinstance(job, Job) and job.status in TERMINAL:
                end(job)

    async def from_list() -> None:
        first, interval = RECONCILE_SECONDS
        await asyncio.sleep(first)
        since = min(job.created_at for job in waiting.values())
        queues = frozenset(job.queue for job in waiting.values())
        while waiting:
            query = JobQuery(
                filter=JobFilter(statuses=TERMINAL, created_after=since, queues=queues),
                sort=JobSort.OLDEST,
                limit=200,
            )
            async for job in engine.iter_jobs(query):
                end(job)
            await asyncio.sleep(interval)

    tasks = [asyncio.create_task(from_stream()), asyncio.create_task(from_list())]
    try:
        await _first_of(done, tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
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


async def events(engine: RemoteEngine, **filters: Any) -> AsyncIterator[Any]:
    """The stream's events for `chute watch`, as they come."""
    async for event in engine.stream(**filters):
        yield event
