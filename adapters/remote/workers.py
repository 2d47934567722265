"""The worker use cases over HTTP, with the signatures of `Working` and `Uploading`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from chute.adapters.remote.base import RemoteBase
from chute.adapters.remote.errors import Context
from chute.adapters.remote.wire import Json, job_of, jobs_of
from chute.application import ClaimFilter, ServiceUnavailable
from chute.domain import ChuteError, Job, Mode


def _claim_json(worker_id: str, limit: int, lease_seconds: int, filt: ClaimFilter | None) -> Json:
    body: Json = {"worker_id": worker_id, "limit": limit, "lease_seconds": lease_seconds}
    if filt is not None:
        body |= {
            "mode": sorted(filt.modes),
            "source_type": sorted(filt.source_types),
            "mime_type": filt.mime_type,
            "queues": sorted(filt.queues),
        }
    return body


class RemoteWorking(RemoteBase):
    async def claim_jobs(
        self,
        worker_id: str,
        *,
        limit: int = 1,
        lease_seconds: int = 60,
        filter: ClaimFilter | None = None,
    ) -> list[Job]:
        """`POST /jobs/claim`: up to `limit` due jobs, each now `running` under a lease.
        (`filter.skip_queues` is the engine's own business and is not sent.)"""
        body = _claim_json(worker_id, limit, lease_seconds, filter)
        return jobs_of(await self._http.json("POST", "/jobs/claim", json=body))

    async def _report(self, job_id: UUID, worker_id: str, action: str, body: Json) -> Job:
        context = Context(job_id=job_id, worker_id=worker_id)
        body = {"worker_id": worker_id, **body}
        path = f"/jobs/{job_id}/{action}"
        return job_of(await self._http.json("POST", path, json=body, context=context))

    async def heartbeat(
        self,
        job_id: UUID,
        worker_id: str,
        *,
        lease_seconds: int | None = None,
        progress: int | None = None,
        progress_message: str | None = None,
    ) -> Job:
        """`POST /jobs/{id}/heartbeat`: the lease extended; `cancelling` means stop."""
        body = {
            "lease_seconds": lease_seconds,
            "progress": progress,
            "progress_message": progress_message,
        }
        found = {key: value for key, value in body.items() if value is not None}
        return await self._report(job_id, worker_id, "heartbeat", found)

    async def complete_job(
        self, job_id: UUID, worker_id: str, *, result: dict[str, Any] | None = None
    ) -> Job:
        """`POST /jobs/{id}/complete`: the work on a held job done, with its result."""
        return await self._report(job_id, worker_id, "complete", {"result": result})

    async def complete_jobs(
        self, worker_id: str, completions: Sequence[tuple[UUID, dict[str, Any] | None]]
    ) -> list[Job | Exception]:
        """`complete_job` of each (job id, result) at once, each outcome the job or the
        error that refused it alone; `ServiceUnavailable` when the server is away for any
        (the worker then sends them all again, and a completion that got through
        answers `LeaseNotHeld` the second time, as it would from the engine)."""
        outcomes = await asyncio.gather(
            *(
                self.complete_job(job_id, worker_id, result=result)
                for job_id, result in completions
            ),
            return_exceptions=True,
        )
        found: list[Job | Exception] = []
        for outcome in outcomes:
            if isinstance(outcome, ServiceUnavailable):
                raise outcome
            if isinstance(outcome, BaseException) and not isinstance(outcome, ChuteError):
                raise outcome
            found.append(outcome)
        return found

    async def fail_job(
        self, job_id: UUID, worker_id: str, error: str, *, retryable: bool = True
    ) -> Job:
        """`POST /jobs/{id}/fail`: a failed attempt, retried after a backoff or not."""
        body = {"error": error, "retryable": retryable}
        return await self._report(job_id, worker_id, "fail", body)

    async def release_job(self, job_id: UUID, worker_id: str) -> Job:
        """`POST /jobs/{id}/release`: a held job given back unfinished, pending at once."""
        return await self._report(job_id, worker_id, "release", {})

    async def redetect_content(self, job_id: UUID, worker_id: str, mode: Mode) -> Job:
        """`POST /jobs/{id}/redetect`: the stored content detected again by `mode`."""
        return await self._report(job_id, worker_id, "redetect", {"mode": str(mode)})

    async def store_content(
        self, job_id: UUID, worker_id: str, filename: str | None, content: AsyncIterable[bytes]
    ) -> Job:
        """`PUT /jobs/{id}/content`: `content` streamed as the request body (never held
        whole), stored as the job's content and detected by the job's mode."""
        params = {"worker_id": worker_id} | ({"filename": filename} if filename else {})
        context = Context(job_id=job_id, worker_id=worker_id)
        response = await self._http.call(
            "PUT",
            f"/jobs/{job_id}/content",
            params=params,
            content=_bytes_of(content),
            headers={"Content-Type": "application/octet-stream"},
            context=context,
        )
        return job_of(response.json())

    async def rescue_expired_leases(self, *, limit: int = 100) -> list[Job]:
        """Nothing, always: a chute server rescues expired leases itself (the
        maintenance duty of `chute serve`, once per deployment), so a remote worker
        leaves it to the server."""
        return []


async def _bytes_of(content: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """`content` as httpx streams a body: bytes, never an empty chunk (which would end
    a chunked body early)."""
    async for chunk in content:
        if chunk:
            yield bytes(chunk)
