"""`/api/v1/stream`: every status change (and progress) as Server-Sent Events, live.

The stream sends what is committed after it opened, from any process of the deployment
(see `chute.application.feed`). With `Last-Event-ID` (the header browsers send when
they reconnect, or `last_event_id` in the query) it first sends every change after
that event, read from the event table, then goes on live: none lost, none twice. A
comment line keeps the connection alive at least every CHUTE_STREAM_KEEPALIVE_SECONDS.
A client that falls CHUTE_STREAM_BUFFER items behind is let go (its stream ends): it
reconnects with its last event id and catches up from the table.
"""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
import logging
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from chute.application import FieldError, ValidationFailed
from chute.application.feed import EventFeed, StreamFilter, SubscriptionDropped
from chute.domain import InvalidValue, JobStatus
from chute.domain.metadata import check_metadata_filters
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.schemas.jobs import MetadataParameters
from chute.entrypoints.http.stream import KEEP_ALIVE, OPENED
from chute.entrypoints.http.values import QueueName
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

router = APIRouter(prefix="/api/v1", tags=["stream"])
log = logging.getLogger("chute.stream")

MAX_EVENT_ID = 2**63 - 1
BURST = 255  # items a stream sends in one write at most


class StreamQuery(MetadataParameters):
    """The filters of a stream (each repeatable, each matching any of its values), and
    where to resume."""

    job_id: list[UUID] = Field(default_factory=list)
    queue: list[QueueName] = Field(default_factory=list)
    status: list[JobStatus] = Field(default_factory=list, description="the new status")
    last_event_id: int | None = Field(
        None, ge=0, le=MAX_EVENT_ID, description="resume after this event (as the header)"
    )

    def to_filter(self) -> StreamFilter:
        try:
            metadata = check_metadata_filters(self._metadata)
        except InvalidValue as e:
            raise ValidationFailed([FieldError(("query", e.field), e.message)]) from None
        return StreamFilter(
            job_ids=frozenset(self.job_id),
            queues=frozenset(self.queue),
            statuses=frozenset(self.status),
            metadata=metadata,
        )


def resume_point(query: StreamQuery, header: str | None) -> int | None:
    """The event to resume after: the query's, else the `Last-Event-ID` header's."""
    if query.last_event_id is not None:
        return query.last_event_id
    if header is None or header == "":
        return None
    if not header.isascii() or not header.isdigit() or int(header) > MAX_EVENT_ID:
        raise ValidationFailed(
            [FieldError(("header", "last-event-id"), "must be an event id: digits only")]
        )
    return int(header)


@router.get(
    "/stream",
    operation_id="stream_events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Server-Sent Events: `event: job` (with an `id:`) and "
            "`event: progress`; comment lines keep the connection alive",
        },
        **problem_responses(422),
    },
)
async def stream_events(
    request: Request,
    query: Annotated[StreamQuery, Query()],
    last_event_id: Annotated[
        str | None, Header(description="resume after this event id (what browsers send)")
    ] = None,
) -> StreamingResponse:
    """Every status change of the jobs the filters select, as it is committed, from
    any process of the deployment; resume with `Last-Event-ID`."""
    wanted = query.to_filter()
    after = resume_point(query, last_event_id)
    feed: EventFeed = request.app.state.feed
    keepalive = request.app.state.container.config.stream_keepalive_seconds()
    return StreamingResponse(
        _events(feed, wanted, after, keepalive),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    feed: EventFeed, wanted: StreamFilter, after: int | None, keepalive: float
) -> AsyncIterator[bytes]:
    subscription = await feed.subscribe()  # first: nothing committed from now on is missed
    log.info("stream.opened", extra={"resume_after": after, "streams": feed.subscribers})
    try:
        yield OPENED
        async for burst in feed.follow(subscription, after, keepalive, BURST):
            if not burst:
                yield KEEP_ALIVE
            elif frames := [item.rendered for item in burst if wanted.matches(item)]:
                yield b"".join(frames)
    except SubscriptionDropped:
        log.warning("stream.dropped", extra={"reason": "fell too far behind"})
    finally:
        feed.unsubscribe(subscription)
