"""Use cases that put content in the store: uploads, and workers storing what they fetched."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from uuid import UUID

from chute.application.commands import UploadFile, UploadOptions, check_fields
from chute.application.errors import (
    ContentNotFound,
    JobNotFound,
    PayloadTooLarge,
    ValidationFailed,
)
from chute.application.ports import StoredFile
from chute.application.upload_batch import ReceivedFile, UploadBatch, refuse_type, safe_filename
from chute.application.use_cases.base import EngineBase, due_after
from chute.domain import CLIENT, DetectionResult, Job, JobStatus, Mode, SourceType
from chute.domain.validation import check_mime_type, check_text

log = logging.getLogger("chute.engine")


class Uploading(EngineBase):
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
        now = self._clock.now()
        if problems := options.problems(now):
            raise ValidationFailed(problems)
        detections = [await self._check_type(i, r, options) for i, r in enumerate(received)]
        jobs = []
        for item, detection in zip(received, detections, strict=True):
            assert item.stored is not None
            detected = detection.mime_type if options.detect and detection else None
            jobs.append(
                Job(
                    id=item.job_id,
                    source_type=SourceType.UPLOAD,
                    source_uri=f"upload://{item.stored.key}",
                    content_key=item.stored.key,
                    file_name=item.name,
                    file_size=item.stored.size,
                    mime_type=detected or _declared(item.declared_type),
                    priority=options.priority,
                    mode=options.mode,
                    metadata=dict(options.metadata),
                    queue=options.queue,
                    run_after=due_after(options.run_after, now),
                    created_at=now,
                    updated_at=now,
                    detection=detection if options.detect else None,
                    trace_context=self.telemetry.trace_context(),
                    changes=[(None, JobStatus.PENDING)],
                )
            )
        async with self._uow(deferred=True) as uow:  # inserts only: group commit may take it
            await uow.jobs.add(jobs)
            changes = await self._record(uow, jobs, CLIENT, None)
            for job in jobs:
                if job.detection is not None:
                    await uow.detections.add(job.id, job.detection)
            await uow.commit()
        self._committed(changes)
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
        assert received.stored is not None
        detection = await self._detect(received.stored, options.mode)
        if not self.limits.allows(detection.mime_type):
            raise refuse_type(index, received.name, detection.mime_type)
        return detection

    async def _detect(self, stored: StoredFile, mode: Mode) -> DetectionResult:
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

    # -- workers ------------------------------------------------------------------------

    async def store_content(
        self, job_id: UUID, worker_id: str, filename: str | None, content: AsyncIterable[bytes]
    ) -> Job:
        """Store content a worker fetched for its job, detect it by the job's mode, and set
        the job's file name, size and type. Only the holder of a live lease may do this."""
        check_fields(lambda: filename is None or check_text("filename", filename))
        mode = (await self._check_lease(job_id, worker_id)).mode
        name = safe_filename(filename)
        writer = await self._files.create(self._ids.new_id(), name)
        try:
            size = 0
            async for chunk in content:
                size += len(chunk)
                if size > self.limits.max_file_bytes:
                    raise PayloadTooLarge(
                        f"The content is larger than {self.limits.max_file_bytes} bytes."
                    )
                await writer.write(chunk)
            stored = await writer.finish()
        except BaseException:
            await writer.abort()
            raise
        try:
            detection = await self._detect(stored, mode)
            return await self._attach(job_id, worker_id, name, stored, detection)
        except BaseException:
            await self._files.delete(stored.key)
            raise

    async def redetect_content(self, job_id: UUID, worker_id: str, mode: Mode) -> Job:
        """Detect a job's stored content again with the detector of `mode`."""
        job = await self._check_lease(job_id, worker_id)
        if job.content_key is None:
            raise ContentNotFound(job_id)
        stored = await self._files.describe(job.content_key)
        detection = await self._detect(stored, mode)
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.check_holder(worker_id, self._clock.now())
            job.mime_type = detection.mime_type
            await uow.jobs.update(job)
            await uow.detections.add(job_id, detection)
            await uow.commit()
        job.detection = detection
        log.info("job.redetected", extra={"job_id": str(job_id), "mime_type": job.mime_type})
        return job

    async def _check_lease(self, job_id: UUID, worker_id: str) -> Job:
        async with self._uow(read_only=True) as uow:
            job = await uow.jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        job.check_holder(worker_id, self._clock.now())
        return job

    async def _attach(
        self,
        job_id: UUID,
        worker_id: str,
        name: str,
        stored: StoredFile,
        detection: DetectionResult,
    ) -> Job:
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.check_holder(worker_id, self._clock.now())
            replaced = job.content_key
            job.file_name, job.file_size = name, stored.size
            job.mime_type, job.content_key = detection.mime_type, stored.key
            job.updated_at = self._clock.now()
            await uow.jobs.update(job)
            await uow.detections.add(job_id, detection)
            await uow.commit()
        if replaced and replaced != stored.key:
            await self._files.delete(replaced)
        job.detection = detection
        log.info(
            "job.content_stored",
            extra={"job_id": str(job_id), "file_size": stored.size, "mime_type": job.mime_type},
        )
        return job


def _declared(content_type: str | None) -> str | None:
    """The client's declared media type when it is a well-formed one, else None."""
    if not content_type:
        return None
    value = content_type.split(";", 1)[0].strip().lower()
    try:
        return check_mime_type(value)
    except ValueError:
        return None
