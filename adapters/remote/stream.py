"""`GET /api/v1/stream` read as Server-Sent Events, resumed after a dropped connection.

The server sends `id:`/`event:`/`data:` lines, a blank line after each event, and
comment lines (`:`) to keep the connection alive. A change comes as `event: job`
with an `id:`; progress as `event: progress`, without one. When the connection drops
(or the server ends the stream: a reader that fell behind, a restart), it is opened
again with `Last-Event-ID` of the last change seen: the server first sends every change
after it, from its event table, so that none is lost and none comes twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import httpx
from chute.adapters.remote.transport import Transport
from chute.adapters.remote.wire import event_of, job_of
from chute.application import ServiceUnavailable
from chute.domain import Job, JobEvent

FIRST_WAIT = 0.1  # seconds before the first reconnection; doubled up to the server's `retry`
DEFAULT_RETRY = 2.0


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One item of the stream: a status change (`kind` "job", with its `event_id`, the
    `event`, and the `job` as the server read it after the change: it may show later
    changes already, so go by `event.to_status`), or a progress report (`kind`
    "progress", with `progress` and `progress_message`; `job` and `event` None)."""

    kind: str
    job_id: UUID
    at: datetime
    event_id: int | None = None
    event: JobEvent | None = None
    job: Job | None = None
    progress: int | None = None
    progress_message: str | None = None


def item_of(kind: str, data: str) -> StreamEvent | None:
    """The item of one SSE event; None for a kind this client does not know."""
    if kind not in ("job", "progress"):
        return None
    body = json.loads(data)
    job_id, at = UUID(body["job_id"]), datetime.fromisoformat(body["at"])
    if kind == "progress":
        return StreamEvent(
            "progress",
            job_id,
            at,
            progress=body["progress"],
            progress_message=body["progress_message"],
        )
    event = event_of(job_id, body)
    return StreamEvent(
        "job", job_id, at, event_id=body["event_id"], event=event, job=job_of(body["job"])
    )


@dataclass
class _Reader:
    """The SSE fields of the event being read, and what outlives a connection."""

    last_event_id: int | None
    retry: float = DEFAULT_RETRY
    kind: str = "message"
    data: list[str] | None = None

    def line(self, line: str) -> StreamEvent | None:
        """Take one line; the event it completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data = [*(self.data or []), value]
        elif name == "event":
            self.kind = value
        elif name == "id" and value.isdigit():
            self.last_event_id = int(value)
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None

    def _dispatch(self) -> StreamEvent | None:
        kind, data = self.kind, self.data
        self.kind, self.data = "message", None
        return item_of(kind, "\n".join(data)) if data is not None else None


async def follow(
    http: Transport,
    query: list[tuple[str, str]],
    last_event_id: int | None,
    opened: Callable[[], None] | None = None,
) -> AsyncIterator[StreamEvent]:
    """The stream's items, for as long as they are read; see the module. `opened` is
    called when a connection's first line comes: the server sends it once it has
    subscribed, so that every change committed from then on comes."""
    reader = _Reader(last_event_id)
    wait, connected = FIRST_WAIT, False
    while True:
        headers = {"Accept": "text/event-stream"}
        if reader.last_event_id is not None:
            headers["Last-Event-ID"] = str(reader.last_event_id)
        try:
            async with http.stream(
                "GET", "/stream", params=query, headers=headers, timeout=_no_read_timeout(http)
            ) as response:
                connected, wait, told = True, FIRST_WAIT, opened is None
                async for line in response.aiter_lines():
                    if not told and opened is not None:
                        told = True
                        opened()
                    if (item := reader.line(line)) is not None:
                        yield item
        except ServiceUnavailable:
            if not connected:  # never reached: a wrong address, not a dropped connection
                raise
        reader.kind, reader.data = "message", None  # a half-read event is read again
        await asyncio.sleep(wait)
        wait = min(wait * 2, reader.retry)


def _no_read_timeout(http: Transport) -> httpx.Timeout:
    """The client's timeouts, but none between reads: a quiet stream is not a dead one
    (the server's keep-alive comments come every CHUTE_STREAM_KEEPALIVE_SECONDS)."""
    return httpx.Timeout(http.client.timeout.connect, read=None)
