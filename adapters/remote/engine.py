"""`RemoteEngine`: the engine's use cases on a chute server, over its HTTP API.

Code written against `OrchestrationEngine` runs against a remote chute unchanged: the
methods have the engine's names, arguments, results and errors (a problem response is
raised as the error the engine would have raised; a server that does not answer as
`ServiceUnavailable`). What only a client needs is here too: `wait_job`, `iter_jobs`,
`upload_file` and `stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import datetime
from os import PathLike
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import httpx
from chute.adapters.remote.clients import RemoteManaging
from chute.adapters.remote.stream import StreamEvent, follow
from chute.adapters.remote.transport import Transport
from chute.adapters.remote.uploads import upload_file
from chute.adapters.remote.workers import RemoteWorking
from chute.application import NoTelemetry
from chute.domain import Job, JobStatus, Mode, Priority


class RemoteEngine(RemoteManaging, RemoteWorking):
    """The use cases of the chute server at `url` (e.g. `http://localhost:8000`), with
    `api_key` sent as `Authorization: Bearer <key>`. One pooled connection set: use it
    as `async with RemoteEngine(...) as chute:`, or `await chute.aclose()` at the end."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(Transport(url, api_key, timeout=timeout, transport=transport))
        # The worker loop runs each job in `telemetry.job_span`; the server counts and
        # traces what it does itself.
        self.telemetry = NoTelemetry()

    @property
    def url(self) -> str:
        return self._http.url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def upload_file(
        self,
        path: str | PathLike[str],
        *,
        queue: str | None = None,
        priority: Priority | None = None,
        mode: Mode | None = None,
        metadata: Mapping[str, Any] | None = None,
        run_after: datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Job:
        """`POST /upload` of the file at `path`: read from disk a chunk at a time as the
        body is sent (memory stays flat whatever its size), stored, detected, and made
        into a job. `progress` is told the bytes of the file sent so far after each
        chunk. The options left None are the server's defaults."""
        fields = {
            "queue": queue,
            "priority": priority,
            "mode": mode,
            "metadata": metadata,
            "run_after": run_after,
        }
        return await upload_file(self._http, path, fields, progress)

    def stream(
        self,
        *,
        job_ids: Collection[UUID] = (),
        queues: Collection[str] = (),
        statuses: Collection[JobStatus] = (),
        metadata: Mapping[str, str] | None = None,
        last_event_id: int | None = None,
        opened: Callable[[], None] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """`GET /stream`: each status change (with the job as it then was) and progress
        report of the jobs the filters select, as the server commits them, for as long
        as it is read. A dropped connection is opened again with the id of the last
        change seen (`Last-Event-ID`), so that nothing is lost or seen twice; start
        after an earlier change with `last_event_id`. `opened()` is called each time a
        connection is open: what commits after it comes on the stream."""
        query: list[tuple[str, str]] = [("job_id", str(job_id)) for job_id in job_ids]
        query += [("queue", name) for name in queues]
        query += [("status", str(status)) for status in statuses]
        query += [(f"metadata.{key}", value) for key, value in (metadata or {}).items()]
        return follow(self._http, query, last_event_id, opened)
