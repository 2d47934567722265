"""The client use cases over HTTP, with the signatures of the engine's own."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from uuid import UUID

from chute.adapters.remote.base import RemoteBase
from chute.adapters.remote.errors import Context
from chute.adapters.remote.wire import (
    Json,
    bulk_of,
    event_of,
    job_of,
    jobs_of,
    list_params,
    new_job_json,
    queue_of,
    selection_json,
)
from chute.application import (
    BulkOutcome,
    Cancellation,
    JobFilter,
    JobPage,
    JobSelection,
    JobSort,
    NewJob,
    QueueChange,
    QueueView,
    Submission,
)
from chute.domain import Job, JobEvent

CHANGED = "Chute-Changed"  # the cancel route's answer to "did this call change the job?"
LONGEST_WAIT = 60  # seconds: the most `GET /jobs/{id}?wait=` takes


class RemoteManaging(RemoteBase):
    async def create_job(self, new: NewJob, *, idempotency_key: str | None = None) -> Submission:
        """`POST /jobs`: a job from a reference; `replayed` when the key answered."""
        response = await self._http.call(
            "POST", "/jobs", json=new_job_json(new), headers=_key(idempotency_key), ok=(200, 201)
        )
        return Submission(jobs=[job_of(response.json())], replayed=response.status_code == 200)

    async def create_jobs(
        self, new: Sequence[NewJob], *, idempotency_key: str | None = None
    ) -> Submission:
        """`POST /jobs/batch`: 1 to 1000 jobs, all or none, in order."""
        response = await self._http.call(
            "POST",
            "/jobs/batch",
            json={"jobs": [new_job_json(job) for job in new]},
            headers=_key(idempotency_key),
            ok=(200, 201),
            context=Context(loc_prefix=("jobs",)),
        )
        return Submission(jobs=jobs_of(response.json()), replayed=response.status_code == 200)

    async def get_job(self, job_id: UUID) -> Job:
        """`GET /jobs/{id}`: the job, with its detection."""
        return job_of(await self._http.json("GET", f"/jobs/{job_id}", context=Context(job_id)))

    async def wait_job(self, job_id: UUID, *, timeout: float | None = None) -> Job:  # noqa: ASYNC109 (the job is answered at the timeout, not an error)
        """The job once it is completed, failed or cancelled, or as it is after
        `timeout` seconds (None: however long it takes). Long polls the server
        (`GET /jobs/{id}?wait=`), so it costs a request a minute, not a busy loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = LONGEST_WAIT if deadline is None else deadline - time.monotonic()
            wait = min(LONGEST_WAIT, math.ceil(left))
            if wait < 1:
                return await self.get_job(job_id)
            data = await self._http.json(
                "GET",
                f"/jobs/{job_id}",
                params={"wait": wait},
                timeout=wait + 30,  # the server answers within `wait`
                context=Context(job_id),
            )
            job = job_of(data)
            if job.status.is_terminal:
                return job

    async def list_jobs(
        self,
        *,
        filter: JobFilter | None = None,
        sort: JobSort = JobSort.NEWEST,
        limit: int = 50,
        page: int = 1,
        cursor: str | None = None,
        count: bool = True,
    ) -> JobPage:
        """`GET /jobs`: one page of jobs, by page number or by the cursor of the last."""
        params = list_params(filter or JobFilter(), sort, limit, page, cursor, count)
        data = await self._http.json("GET", "/jobs", params=params)
        items = [job_of(item) for item in data["items"]]
        return JobPage(items, data["total"], data["next_cursor"], total_exact=data["total_exact"])

    async def iter_jobs(
        self,
        *,
        filter: JobFilter | None = None,
        sort: JobSort = JobSort.NEWEST,
        page_size: int = 200,
    ) -> AsyncIterator[Job]:
        """Every job the filter selects, in `sort` order, a page at a time by cursor
        (uncounted pages: each costs the same however deep)."""
        page = await self.list_jobs(filter=filter, sort=sort, limit=page_size, count=False)
        while True:
            for job in page.items:
                yield job
            if page.next_cursor is None:
                return
            page = await self.list_jobs(
                filter=filter, sort=sort, limit=page_size, cursor=page.next_cursor, count=False
            )

    async def list_job_events(self, job_id: UUID) -> list[JobEvent]:
        """`GET /jobs/{id}/events`: every status change, oldest first."""
        data = await self._http.json("GET", f"/jobs/{job_id}/events", context=Context(job_id))
        return [event_of(job_id, item) for item in data["items"]]

    async def open_content(self, job_id: UUID) -> tuple[Job, AsyncIterator[bytes]]:
        """`GET /jobs/{id}/content`: the job, and its stored bytes as they arrive.
        Read the bytes to the end (or `aclose()` them): they hold a connection."""
        job = await self.get_job(job_id)
        response = await self._http.open("GET", f"/jobs/{job_id}/content", Context(job_id))
        return job, _body(response.aiter_bytes(), response.aclose)

    async def cancel_job(self, job_id: UUID) -> Cancellation:
        """`DELETE /jobs/{id}`: pending jobs cancelled at once, running ones `cancelling`."""
        response = await self._http.call(
            "DELETE", f"/jobs/{job_id}", ok=(200, 202), context=Context(job_id)
        )
        changed = response.headers.get(CHANGED, "true") == "true"
        return Cancellation(job_of(response.json()), changed)

    async def retry_job(self, job_id: UUID) -> Job:
        """`POST /jobs/{id}/retry`: a failed or cancelled job pending again."""
        path = f"/jobs/{job_id}/retry"
        return job_of(await self._http.json("POST", path, context=Context(job_id)))

    async def cancel_jobs(self, selection: JobSelection) -> BulkOutcome:
        """`POST /jobs/cancel`: many jobs cancelled, by ids or by a filter."""
        return await self._bulk("/jobs/cancel", selection)

    async def retry_jobs(self, selection: JobSelection) -> BulkOutcome:
        """`POST /jobs/retry`: many failed or cancelled jobs queued again."""
        return await self._bulk("/jobs/retry", selection)

    async def _bulk(self, path: str, selection: JobSelection) -> BulkOutcome:
        prefix = () if selection.filter is None or selection.ids else ("filter",)
        context = Context(loc_prefix=prefix)
        return bulk_of(
            await self._http.json("POST", path, json=selection_json(selection), context=context)
        )

    async def list_queues(self) -> list[QueueView]:
        """`GET /queues`: every queue some job or setting names, by name."""
        return [queue_of(item) for item in (await self._http.json("GET", "/queues"))["items"]]

    async def get_queue(self, name: str) -> QueueView:
        """`GET /queues/{name}`: one queue with its counts."""
        return queue_of(
            await self._http.json("GET", f"/queues/{name}", context=Context(queue=name))
        )

    async def update_queue(self, name: str, change: QueueChange) -> QueueView:
        """`PATCH /queues/{name}`: pause, resume, or set or lift the concurrency limit."""
        body: Json = {} if change.paused is None else {"paused": change.paused}
        if change.set_concurrency_limit:
            body["concurrency_limit"] = change.concurrency_limit
        data = await self._http.json(
            "PATCH", f"/queues/{name}", json=body, context=Context(queue=name)
        )
        return queue_of(data)


def _key(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}


async def _body(
    chunks: AsyncIterator[bytes], close: Callable[[], Awaitable[None]]
) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
    finally:
        await close()
