"""Use cases of retention: purge old finished jobs, and sweep storage folders no job uses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from chute.application.errors import FieldError, ValidationFailed
from chute.application.use_cases.creating import IDEMPOTENCY_TTL
from chute.application.use_cases.owning import Owning
from chute.domain import ChuteError, Job, JobStatus

log = logging.getLogger("chute.engine")

TERMINAL = frozenset(status for status in JobStatus if status.is_terminal)
MAX_PURGE_BATCH = 10_000
SWEEP_BATCH = 500  # folders looked up in one query


class Purging(Owning):
    async def purge_jobs(
        self,
        *,
        older_than: datetime,
        statuses: frozenset[JobStatus] = TERMINAL,
        batch_size: int = 500,
    ) -> int:
        """Delete finished jobs last updated before `older_than`, with their events,
        detection results and stored files, `batch_size` jobs per transaction; also forget
        expired idempotency keys. Safe while workers run. Returns how many jobs went."""
        statuses = _check_purge(older_than, statuses, batch_size)
        await self._forget_expired_keys()
        purged = 0
        while True:
            async with self._uow() as uow:
                jobs = await uow.jobs.lock_purgeable(statuses, older_than, batch_size)
                # The repository already chose by status; this is the last line of defence.
                jobs = [job for job in jobs if job.status.is_terminal]
                count = await uow.jobs.delete([job.id for job in jobs]) if jobs else 0
                await uow.commit()
            # Files go only after their rows: a file left behind is an orphan that the
            # sweep removes later, whereas a job without its file could not be served.
            await self._delete_files(jobs)
            purged += count
            if count:
                log.info("jobs.purged", extra={"count": count})
            if len(jobs) < batch_size:
                return purged

    async def sweep_orphans(self, *, grace: timedelta = timedelta(hours=1)) -> int:
        """Remove storage folders that no job refers to and that nothing touched for
        `grace` (so that content still being stored, whose job is not committed yet, is
        kept). Returns how many folders went. Only a storage that belongs to this
        database is swept (`StorageOwnedElsewhere` otherwise): to any other, every
        folder would look orphaned."""
        if grace < timedelta(0):
            raise ValidationFailed([FieldError(("grace",), "must not be negative")])
        await self.claim_storage()
        removed = 0
        batch: list[UUID] = []
        async for folder in self._files.folders(self._clock.now() - grace):
            batch.append(folder)
            if len(batch) == SWEEP_BATCH:
                removed += await self._sweep(batch)
                batch = []
        removed += await self._sweep(batch) if batch else 0
        log.info("files.swept", extra={"count": removed})
        return removed

    async def _forget_expired_keys(self) -> None:
        async with self._uow() as uow:
            count = await uow.idempotency.delete_older(self._clock.now() - IDEMPOTENCY_TTL)
            await uow.commit()
        log.info("idempotency_keys.purged", extra={"count": count})

    async def _delete_files(self, jobs: Sequence[Job]) -> None:
        failed = 0
        for job in jobs:
            if job.content_key is None:
                continue
            try:
                await self._files.delete(job.content_key)
            except (ChuteError, ValueError):
                failed += 1  # its folder is an orphan now: the sweep tries again
        if failed:
            log.warning("jobs.purge_files_failed", extra={"count": failed})

    async def _sweep(self, folders: Sequence[UUID]) -> int:
        async with self._uow(read_only=True) as uow:
            used = await uow.jobs.referenced_folders(folders)
        unused = [folder for folder in folders if folder not in used]
        for folder in unused:
            await self._files.delete_folder(folder)
        return len(unused)


def _check_purge(
    older_than: datetime, statuses: frozenset[JobStatus], batch_size: int
) -> frozenset[JobStatus]:
    """The statuses to purge, as `JobStatus`; `ValidationFailed` for any bad argument."""
    errors = []
    if older_than.tzinfo is None:
        errors.append(FieldError(("older_than",), "must be an aware datetime"))
    if not statuses:
        errors.append(FieldError(("statuses",), "must name at least one status"))
    live = sorted(str(s) for s in statuses if s not in TERMINAL)
    if live:
        # A running job must never lose its row under its worker.
        errors.append(FieldError(("statuses",), f"only finished jobs are purged, not {live}"))
    if not 1 <= batch_size <= MAX_PURGE_BATCH:
        errors.append(FieldError(("batch_size",), f"must be 1 to {MAX_PURGE_BATCH}"))
    if errors:
        raise ValidationFailed(errors)
    return frozenset(JobStatus(s) for s in statuses)
