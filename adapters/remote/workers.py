"""The worker use cases over HTTP, with the signatures of `Working` and `Uploading`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from chute.adapters.remote.base import RemoteBase
from chute.adapters.remote.errors import Context, Problem, error_of
from chute.adapters.remote.wire import Json, job_of, jobs_of
from chute.application import ClaimFilter, ValidationFailed
from chute.application.commands import checked_claim, field_problems
from chute.domain import Job, Mode
from chute.domain import validation as rules


def _claim_json(limit: int, lease_seconds: int, filt: ClaimFilter | None) -> Json:
    """A claim's members but `worker_id`: the claim route's, or a completion's `claim`."""
    body: Json = {"limit": limit, "lease_seconds": lease_seconds}
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
        body = {"worker_id": worker_id, **_claim_json(limit, lease_seconds, filter)}
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
        """`POST /jobs/complete`, in requests of at most 100 jobs and `MAX_BATCH_BYTES`:
        `complete_job` of each (job id, result) at once, each outcome the job or the
        error that refused it alone (a result that is no JSON, or too large for any
        request, is refused here as the engine refuses it); `ServiceUnavailable` when
        the server is away for any (the worker then sends them all again, and a
        completion that got through answers `LeaseNotHeld` the second time, as it
        would from the engine)."""
        outcomes, _ = await self._complete(worker_id, completions, None)
        return outcomes

    async def complete_and_claim(
        self,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        *,
        limit: int,
        lease_seconds: int = 60,
        filter: ClaimFilter | None = None,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """`complete_jobs` with the claim in its (last) request, `claim`: one request
        and one transaction for a worker's turn. A claim the server would refuse is
        refused before anything is completed; with no completion to send, `claim_jobs`."""
        checked_claim(worker_id, limit, lease_seconds, filter)
        claim = _dumps(_claim_json(limit, lease_seconds, filter))
        outcomes, claimed = await self._complete(worker_id, completions, claim)
        if claimed is None:
            claimed = await self.claim_jobs(
                worker_id, limit=limit, lease_seconds=lease_seconds, filter=filter
            )
        return outcomes, claimed

    async def _complete(
        self,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        claim: bytes | None,
    ) -> tuple[list[Job | Exception], list[Job] | None]:
        """The outcomes of `POST /jobs/complete` requests, the last one with `claim`
        (JSON); the jobs it claimed, None when no request was sent."""
        outcomes: dict[int, Job | Exception] = {}
        batches = list(_batches(completions, outcomes))
        claimed = None
        for number, batch in enumerate(batches, 1):
            last_claim = claim if number == len(batches) else None
            body = b'{"worker_id":' + _dumps(worker_id) + b',"jobs":['
            body += b",".join(item.json for item in batch) + b"]"
            if last_claim is not None:
                body += b',"claim":' + last_claim
            answer = await self._http.json(
                "POST",
                "/jobs/complete",
                content=body + b"}",
                headers=_JSON,
                context=Context(worker_id=worker_id),
            )
            for position, (item, data) in enumerate(zip(batch, answer["items"], strict=True)):
                outcomes[item.index] = _outcome(data, item.job_id, worker_id, position)
            if last_claim is not None:
                claimed = jobs_of(answer)
        return [outcomes[index] for index in range(len(completions))], claimed

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


# What one `POST /jobs/complete` carries at most: the server's limits.
MAX_BATCH_ITEMS = 100
MAX_BATCH_BYTES = 16 * 1024 * 1024 - 4096
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One completion as its item of the request body."""

    index: int
    job_id: UUID
    json: bytes


def _dumps(value: object) -> bytes:
    """JSON as httpx writes it (and as the engine measures a result)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _batches(
    completions: Sequence[tuple[UUID, dict[str, Any] | None]],
    outcomes: dict[int, Job | Exception],
) -> Iterator[list[_Encoded]]:
    """The completions in request-sized batches, in order. One whose result is not
    JSON, or larger than a request (far over the engine's 1 MiB), gets the engine's
    `ValidationFailed` as its outcome and is sent in none."""
    batch: list[_Encoded] = []
    size = 0
    for index, (job_id, result) in enumerate(completions):
        try:
            item = _dumps({"job_id": str(job_id), "result": result})
        except (TypeError, ValueError, RecursionError):
            item = b""
        if not item or len(item) > MAX_BATCH_BYTES:
            outcomes[index] = ValidationFailed(field_problems(partial(rules.check_result, result)))
            continue
        if batch and (len(batch) == MAX_BATCH_ITEMS or size + len(item) > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(_Encoded(index, job_id, item))
        size += len(item) + 1
    if batch:
        yield batch


def _outcome(data: Json, job_id: UUID, worker_id: str, position: int) -> Job | Exception:
    """One item of the answer: the job, or the engine's error for its problem."""
    if "job" in data:
        return job_of(data["job"])
    problem = Problem.of(int(data["problem"].get("status", 500)), data["problem"])
    where = Context(job_id=job_id, worker_id=worker_id, loc_prefix=("jobs", position))
    return error_of(problem, where)


async def _bytes_of(content: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """`content` as httpx streams a body: bytes, never an empty chunk (which would end
    a chunked body early)."""
    async for chunk in content:
        if chunk:
            yield bytes(chunk)
