"""OrchestrationEngine: chute's use cases, one async method each, one transaction each."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from chute.application.commands import (
    NewJob,
    UploadFile,
    UploadLimits,
    UploadOptions,
    fingerprint,
    validate_batch,
)
from chute.application.errors import (
    FieldError,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    JobNotFound,
    ValidationFailed,
)
from chute.application.ports import (
    Clock,
    ContentDetector,
    FileStore,
    IdempotencyRecord,
    IdGenerator,
    UnitOfWork,
    UnitOfWorkFactory,
)
from chute.application.queries import (
    JobFilter,
    JobPage,
    JobQuery,
    JobSort,
    Keyset,
    decode_cursor,
    encode_cursor,
)
from chute.application.upload import ReceivedFile, UploadBatch, refuse_type
from chute.domain import DetectionResult, Job, JobStatus, Mode, SourceType
from chute.domain.validation import check_mime_type

log = logging.getLogger("chute.engine")

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_PAGE_SIZE = 200


@dataclass(frozen=True, slots=True)
class Submission:
    """The jobs of a create request; `replayed` when an idempotency key answered it."""

    jobs: list[Job]
    replayed: bool = False

    @property
    def job(self) -> Job:
        return self.jobs[0]


@dataclass(frozen=True, slots=True)
class Cancellation:
    """The job after a cancel; `changed` is False when it was cancelled already."""

    job: Job
    changed: bool


class OrchestrationEngine:
    """The use cases of chute. Every port comes in through the constructor."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        files: FileStore,
        detectors: Mapping[Mode, ContentDetector],
        clock: Clock,
        ids: IdGenerator,
        limits: UploadLimits | None = None,
    ) -> None:
        self._uow, self._files, self._detectors = uow, files, detectors
        self._clock, self._ids = clock, ids
        self.limits = limits or UploadLimits()

    # -- creating jobs ------------------------------------------------------------------

    async def create_job(self, new: NewJob, *, idempotency_key: str | None = None) -> Submission:
        """Create one job from a reference. A repeated idempotency key replays the first."""
        problems = new.problems()
        if problems:
            raise ValidationFailed(problems)
        return await self._create([new], "jobs", idempotency_key)

    async def create_jobs(
        self, new: Sequence[NewJob], *, idempotency_key: str | None = None
    ) -> Submission:
        """Create many jobs at once: all of them or, when any is invalid, none."""
        if not 1 <= len(new) <= 1000:
            raise ValidationFailed([FieldError((), "a batch holds 1 to 1000 jobs")])
        validate_batch(new)
        return await self._create(new, "jobs/batch", idempotency_key)

    async def _create(self, new: Sequence[NewJob], scope: str, key: str | None) -> Submission:
        digest = fingerprint(new) if key else ""
        try:
            return await self._create_once(new, scope, key, digest)
        except IdempotencyConflict:
            # Another request stored the key between our look-up and our insert; it
            # has committed by now (or rolled back): answer as a replay if we can.
            replay = await self._replay(scope, key, digest) if key else None
            if replay is None:
                raise IdempotencyKeyInUse() from None
            return replay

    async def _create_once(
        self, new: Sequence[NewJob], scope: str, key: str | None, digest: str
    ) -> Submission:
        now = self._clock.now()
        async with self._uow() as uow:
            if key:
                replay = await self._replay_in(uow, scope, key, digest)
                if replay is not None:
                    return replay
            jobs = [self._new_job(spec, now) for spec in new]
            await uow.jobs.add(jobs)
            if key:
                ids = tuple(job.id for job in jobs)
                await uow.idempotency.add(IdempotencyRecord(scope, key, digest, ids, now))
            await uow.commit()
        for job in jobs:
            log.info("job.created", extra={"job_id": str(job.id), "source_type": job.source_type})
        return Submission(jobs)

    async def _replay(self, scope: str, key: str, digest: str) -> Submission | None:
        async with self._uow() as uow:
            replay = await self._replay_in(uow, scope, key, digest)
            await uow.commit()
            return replay

    async def _replay_in(
        self, uow: UnitOfWork, scope: str, key: str, digest: str
    ) -> Submission | None:
        record = await uow.idempotency.get(scope, key)
        if record is None:
            return None
        if record.created_at + IDEMPOTENCY_TTL <= self._clock.now():
            await uow.idempotency.delete(scope, key)
            return None
        if record.fingerprint != digest:
            raise IdempotencyKeyReused()
        jobs = await self._with_detections(uow, await uow.jobs.get_many(record.job_ids))
        log.info("job.create_replayed", extra={"job_ids": [str(j.id) for j in jobs]})
        return Submission(jobs, replayed=True)

    def _new_job(self, spec: NewJob, now: datetime) -> Job:
        return Job(
            id=self._ids.new_id(),
            source_type=SourceType(spec.source_type),
            source_uri=spec.source_uri,
            file_name=spec.file_name,
            file_size=spec.file_size,
            mime_type=spec.mime_type.lower() if spec.mime_type else None,
            priority=spec.priority,
            mode=spec.mode,
            metadata=dict(spec.metadata),
            max_attempts=spec.max_attempts,
            created_at=now,
            updated_at=now,
        )

    # -- uploads ------------------------------------------------------------------------

    @asynccontextmanager
    async def upload(self) -> AsyncIterator[UploadBatch]:
        """An upload in progress: whatever it stored is removed unless it is submitted."""
        batch = UploadBatch(self._files, self.limits, self._ids.new_id, self._make_upload_jobs)
        try:
            yield batch
        finally:
            await batch.discard()

    async def submit_upload(
        self, files: Sequence[UploadFile], options: UploadOptions | None = None
    ) -> list[Job]:
        """Store each file, detect its content, and create one job per file, all or none."""
        async with self.upload() as batch:
            for file in files:
                await batch.start_file(file.filename, file.declared_type)
                async for chunk in file.content:
                    await batch.write(chunk)
                await batch.end_file()
            return await batch.submit(options or UploadOptions())

    async def _make_upload_jobs(
        self, received: Sequence[ReceivedFile], options: UploadOptions
    ) -> list[Job]:
        detections = [await self._check_type(i, r, options) for i, r in enumerate(received)]
        now = self._clock.now()
        jobs = []
        for item, detection in zip(received, detections, strict=True):
            assert item.stored is not None
            detected = detection.mime_type if options.detect and detection else None
            jobs.append(
                Job(
                    id=item.job_id,
                    source_type=SourceType.UPLOAD,
                    source_uri=f"upload://{item.stored.key}",
                    file_name=item.name,
                    file_size=item.stored.size,
                    mime_type=detected or _declared(item.declared_type),
                    priority=options.priority,
                    mode=options.mode,
                    metadata=dict(options.metadata),
                    created_at=now,
                    updated_at=now,
                    detection=detection if options.detect else None,
                )
            )
        async with self._uow() as uow:
            await uow.jobs.add(jobs)
            for job in jobs:
                if job.detection is not None:
                    await uow.detections.add(job.id, job.detection)
            await uow.commit()
        for job in jobs:
            log.info(
                "job.uploaded",
                extra={
                    "job_id": str(job.id),
                    "file_size": job.file_size,
                    "mime_type": job.mime_type,
                },
            )
        return jobs

    async def _check_type(
        self, index: int, received: ReceivedFile, options: UploadOptions
    ) -> DetectionResult | None:
        if not (options.detect or self.limits.allowed_types):
            return None
        detection = await self.detect(received, options.mode)
        if not self.limits.allows(detection.mime_type):
            raise refuse_type(index, received, detection.mime_type)
        return detection

    async def detect(self, received: ReceivedFile, mode: Mode) -> DetectionResult:
        stored = received.stored
        assert stored is not None
        guess = await self._detectors[mode].detect(stored.sample)
        return DetectionResult(
            mime_type=guess.mime_type,
            label=guess.label,
            group=guess.group,
            confidence=guess.confidence,
            detector=guess.detector,
            sha256=stored.sha256,
            size=stored.size,
            detected_at=self._clock.now(),
        )

    # -- reading ------------------------------------------------------------------------

    async def get_job(self, job_id: UUID) -> Job:
        """The job with this id, with its detection result; `JobNotFound` if none."""
        async with self._uow(read_only=True) as uow:
            job = await uow.jobs.get(job_id)
            if job is None:
                raise JobNotFound(job_id)
            return (await self._with_detections(uow, [job]))[0]

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
        """One page of jobs, by page number or by a cursor from the page before."""
        filt = filter or JobFilter()
        _check_page(limit, page)
        after = decode_cursor(cursor, sort, filt) if cursor is not None else None
        offset = 0 if after else (page - 1) * limit
        query = JobQuery(filter=filt, sort=sort, limit=limit + 1, offset=offset, after=after)
        async with self._uow(read_only=True) as uow:
            rows = await uow.jobs.find(query)
            total = await uow.jobs.count(filt) if count else None
            items = await self._with_detections(uow, rows[:limit])
        more = len(rows) > limit
        next_cursor = encode_cursor(Keyset.of(items[-1], sort), sort, filt) if more else None
        return JobPage(items, total, next_cursor)

    # -- changing status ----------------------------------------------------------------

    async def cancel_job(self, job_id: UUID) -> Cancellation:
        """Cancel a job: pending ones at once, running ones when their worker stops."""
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            changed = job.cancel(self._clock.now())
            if changed:
                await uow.jobs.update(job)
            await uow.commit()
            job = (await self._with_detections(uow, [job]))[0]
        log.info(
            "job.cancelled", extra={"job_id": str(job_id), "status": job.status, "changed": changed}
        )
        return Cancellation(job, changed)

    async def retry_job(self, job_id: UUID) -> Job:
        """Queue a failed or cancelled job again, allowing one more attempt."""
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.retry(self._clock.now())
            await uow.jobs.update(job)
            await uow.commit()
            job = (await self._with_detections(uow, [job]))[0]
        log.info("job.retried", extra={"job_id": str(job_id)})
        return job

    async def update_job_status(
        self,
        job_id: UUID,
        status: JobStatus,
        *,
        error: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Job:
        """Move a job along one edge of the status diagram (for in-process pipelines)."""
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.move_to(JobStatus(status), self._clock.now())
            if error is not None:
                job.last_error = error
            if result is not None:
                job.result = result
            await uow.jobs.update(job)
            await uow.commit()
            job = (await self._with_detections(uow, [job]))[0]
        log.info("job.status_updated", extra={"job_id": str(job_id), "status": job.status})
        return job

    # -- health -------------------------------------------------------------------------

    async def check_ready(self) -> None:
        """Raise `ServiceUnavailable` unless the database answers and storage accepts a write."""
        async with self._uow(read_only=True) as uow:
            await uow.jobs.count(JobFilter(statuses=frozenset({JobStatus.RUNNING})))
        await self._files.check_writable()

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    async def _get_for_update(uow: UnitOfWork, job_id: UUID) -> Job:
        job = await uow.jobs.get(job_id, for_update=True)
        if job is None:
            raise JobNotFound(job_id)
        return job

    @staticmethod
    async def _with_detections(uow: UnitOfWork, jobs: list[Job]) -> list[Job]:
        found = await uow.detections.get_many([job.id for job in jobs]) if jobs else {}
        for job in jobs:
            job.detection = found.get(job.id)
        return jobs


def _check_page(limit: int, page: int) -> None:
    errors = []
    if not 1 <= limit <= MAX_PAGE_SIZE:
        errors.append(FieldError(("limit",), f"must be 1 to {MAX_PAGE_SIZE}"))
    if page < 1:
        errors.append(FieldError(("page",), "must be 1 or more"))
    if errors:
        raise ValidationFailed(errors)


def _declared(content_type: str | None) -> str | None:
    """The client's declared media type when it is a well-formed one, else None."""
    if not content_type:
        return None
    value = content_type.split(";", 1)[0].strip().lower()
    try:
        return check_mime_type(value)
    except ValueError:
        return None
