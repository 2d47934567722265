"""Use cases of clients: read jobs and their history, cancel, retry, move a job by hand."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from chute.application.commands import check_fields
from chute.application.errors import ContentNotFound, FieldError, JobNotFound, ValidationFailed
from chute.application.queries import (
    JobFilter,
    JobPage,
    JobQuery,
    JobSort,
    Keyset,
    decode_cursor,
    encode_cursor,
)
from chute.application.use_cases.base import EngineBase
from chute.domain import CLIENT, Job, JobEvent, JobStatus
from chute.domain.metadata import check_metadata_filters
from chute.domain.validation import check_mime_pattern, check_result, check_text

log = logging.getLogger("chute.engine")

MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The job after a cancel; `changed` is False when it was cancelled already."""

    job: Job
    changed: bool


class Managing(EngineBase):
    async def get_job(self, job_id: UUID) -> Job:
        """The job with this id, with its detection result; `JobNotFound` if none."""
        async with self._uow(read_only=True) as uow:
            job = await uow.jobs.get(job_id)
            if job is None:
                raise JobNotFound(job_id)
            return job

    async def get_jobs(self, job_ids: Sequence[UUID]) -> list[Job]:
        """The jobs of `job_ids` that exist, each once, in the order first asked, with
        their detection results: one read however many (a page that follows some jobs)."""
        async with self._uow(read_only=True) as uow:
            return await uow.jobs.get_many(list(dict.fromkeys(job_ids)))

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
        """One page of jobs, by page number or by a cursor from the page before.

        With `count`, `total` is how many jobs match, counted up to `count_cap`: when
        more match, `total` is the cap and `total_exact` False.
        """
        filt = filter or JobFilter()
        _check_page(limit, page)
        check_fields(
            lambda: filt.mime_type is None or check_mime_pattern(filt.mime_type),
            lambda: cursor is None or check_text("cursor", cursor),
            lambda: check_metadata_filters(filt.metadata),
        )
        after = decode_cursor(cursor, sort, filt) if cursor is not None else None
        offset = 0 if after else (page - 1) * limit
        query = JobQuery(filter=filt, sort=sort, limit=limit + 1, offset=offset, after=after)
        async with self._uow(read_only=True) as uow:
            rows = await uow.jobs.find(query)
            # One more than the cap: finding it tells that the cap was passed.
            counted = await uow.jobs.count(filt, at_most=self.count_cap + 1) if count else None
            items = rows[:limit]
        more = len(rows) > limit
        next_cursor = encode_cursor(Keyset.of(items[-1], sort), sort, filt) if more else None
        if counted is None:
            return JobPage(items, None, next_cursor)
        exact = counted <= self.count_cap
        return JobPage(items, min(counted, self.count_cap), next_cursor, total_exact=exact)

    async def list_job_events(self, job_id: UUID) -> list[JobEvent]:
        """Every status change of a job, oldest first."""
        async with self._uow(read_only=True) as uow:
            if await uow.jobs.get(job_id) is None:
                raise JobNotFound(job_id)
            return await uow.events.list(job_id)

    async def open_content(self, job_id: UUID) -> tuple[Job, AsyncIterator[bytes]]:
        """A job and the stored bytes of its content, streamed."""
        job = await self.get_job(job_id)
        if job.content_key is None:
            raise ContentNotFound(job_id)
        return job, self._files.open(job.content_key)

    async def cancel_job(self, job_id: UUID) -> Cancellation:
        """Cancel a job: pending ones at once, running ones when their worker stops."""
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            changed = job.cancel(self._clock.now())
            changes = await self._save(uow, job, CLIENT) if changed else []
            await uow.commit()
        self._committed(changes)
        log.info(
            "job.cancelled", extra={"job_id": str(job_id), "status": job.status, "changed": changed}
        )
        return Cancellation(job, changed)

    async def retry_job(self, job_id: UUID) -> Job:
        """Queue a failed or cancelled job again, allowing one more attempt."""
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.retry(self._clock.now())
            changes = await self._save(uow, job, CLIENT)
            await uow.commit()
        self._committed(changes)
        log.info("job.retried", extra={"job_id": str(job_id)})
        return job

    async def update_job_status(
        self,
        job_id: UUID,
        status: JobStatus,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
        actor: str = CLIENT,
    ) -> Job:
        """Move a job along one edge of the status diagram (for in-process pipelines)."""
        check_fields(
            lambda: result is None or check_result(result),
            lambda: error is None or check_text("error", error),
            lambda: check_text("actor", actor),
        )
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.move_to(JobStatus(status), self._clock.now())
            if error is not None:
                job.last_error = error
            if result is not None:
                job.result = result
            changes = await self._save(uow, job, actor, error)
            await uow.commit()
        self._committed(changes)
        log.info("job.status_updated", extra={"job_id": str(job_id), "status": job.status})
        return job

    async def check_ready(self) -> None:
        """Raise `ServiceUnavailable` unless the database answers and storage takes a write."""
        async with self._uow(read_only=True) as uow:
            await uow.jobs.find(JobQuery(limit=1))
        await self._files.check_writable()


def _check_page(limit: int, page: int) -> None:
    errors = []
    if not 1 <= limit <= MAX_PAGE_SIZE:
        errors.append(FieldError(("limit",), f"must be 1 to {MAX_PAGE_SIZE}"))
    if page < 1:
        errors.append(FieldError(("page",), "must be 1 or more"))
    if errors:
        raise ValidationFailed(errors)
