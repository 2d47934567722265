"""Server-Sent Events of the live feed: the bytes of each item, and the feed of an app.

A status change is sent as

    id: 1041
    event: job
    data: {"event_id": 1041, "job_id": ..., "from_status": ..., "to_status": ...,
           "at": ..., "actor": ..., "detail": ..., "job": {the job as it is now}}

and progress as `event: progress` with `{"job_id", "progress", "progress_message",
"at"}` and no `id:` (a client's Last-Event-ID stays that of the last change). Each
item is written once by the feed, for every stream that sends it.
"""

from __future__ import annotations

import json
import time
from uuid import UUID

from chute.application import OrchestrationEngine
from chute.application.feed import EventFeed, FeedItem, SubscriptionDropped
from chute.domain import Job
from chute.entrypoints.bootstrap import Container, settled
from chute.entrypoints.http.job_json import job_json
from chute.entrypoints.http.values import rfc3339

KEEP_ALIVE = b": keep-alive\n\n"
OPENED = b"retry: 2000\n: stream opened\n\n"


def sse_frame(item: FeedItem) -> bytes:
    """The Server-Sent Event of one feed item."""
    job = item.job
    if item.fed is not None:
        event = item.fed.event
        head = json.dumps(
            {
                "event_id": item.fed.id,
                "job_id": str(event.job_id),
                "from_status": event.from_status.value if event.from_status else None,
                "to_status": event.to_status.value,
                "at": rfc3339(event.at),
                "actor": event.actor,
                "detail": event.detail,
            },
            ensure_ascii=False,
        )
        data = head[:-1].encode() + b', "job": ' + job_json(job) + b"}"
        return b"id: %d\nevent: job\ndata: %s\n\n" % (item.fed.id, data)
    assert item.progress is not None
    progress = item.progress
    data = json.dumps(
        {
            "job_id": str(job.id),
            "progress": progress.progress,
            "progress_message": progress.message,
            "at": rfc3339(progress.at),
        },
        ensure_ascii=False,
    ).encode()
    return b"event: progress\ndata: %s\n\n" % data


async def wait_for_end(
    feed: EventFeed, engine: OrchestrationEngine, job_id: UUID, seconds: float
) -> Job:
    """The job once it has ended, or after `seconds`: woken by the feed's changes."""
    subscription = await feed.subscribe()
    try:
        job = await engine.get_job(job_id)  # it may have ended before we subscribed
        deadline = time.monotonic() + seconds
        while not job.status.is_terminal and (left := deadline - time.monotonic()) > 0:
            item = await subscription.next(left)
            if item is not None and item.job.id == job_id:
                job = item.job  # as the feed read it, after the change
    except SubscriptionDropped:
        job = await engine.get_job(job_id)  # the feed ran ahead of us: read it as it is
    finally:
        feed.unsubscribe(subscription)
    return job


async def event_feed(container: Container) -> EventFeed:
    """The feed of an app on the container's database and change signal."""
    config = container.config
    return EventFeed(
        uow=await settled(container.database()),
        signal=await settled(container.change_signal()),
        clock=container.clock(),
        render=sse_frame,
        buffer=config.stream_buffer(),
    )
