"""Use cases of clients on many jobs at once: cancel_jobs, retry_jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import UUID

from chute.application.commands import check_fields
from chute.application.errors import FieldError, ValidationFailed
from chute.application.ports import UnitOfWork
from chute.application.queries import JobFilter, JobQuery, JobSort
from chute.application.telemetry import Change
from chute.application.use_cases.base import EngineBase
from chute.domain import CLIENT, Job, JobStatus
from chute.domain.errors import InvalidTransition
from chute.domain.metadata import check_metadata_filters
from chute.domain.validation import check_mime_pattern

log = logging.getLogger("chute.engine")

MAX_IDS = 1000
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1000
CHUNK = 1000  # jobs locked and changed by one transaction

S = JobStatus
# The statuses a job can leave by each action: a filter selects only these, so that a
# client calling again while `more` is true moves on instead of meeting the same jobs.
CANCELLABLE = frozenset({S.PENDING, S.RUNNING})
RETRYABLE = frozenset({S.FAILED, S.CANCELLED})


@dataclass(frozen=True, kw_only=True)
class JobSelection:
    """The jobs a bulk action is for: `ids` (1 to 1000), or those `filter` selects,
    oldest first, at most `limit` (1 to 10,000)."""

    ids: tuple[UUID, ...] | None = None
    filter: JobFilter | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """What a bulk action did: `matched` jobs acted on (`changed` + `unchanged`, the
    latter counting unknown ids too), and whether more jobs matched than `limit`."""

    matched: int
    changed: int
    unchanged: int
    more: bool


class Bulk(EngineBase):
    async def cancel_jobs(self, selection: JobSelection) -> BulkOutcome:
        """Cancel many jobs, each as `cancel_job` would: pending ones at once, running
        ones when their worker stops; the others are unchanged. See `_act` for how the
        jobs are chosen and locked."""
        return await self._act(selection, CANCELLABLE, lambda job, now: job.cancel(now))

    async def retry_jobs(self, selection: JobSelection) -> BulkOutcome:
        """Queue many failed or cancelled jobs again, each as `retry_job` would; the
        others are unchanged. See `_act` for how the jobs are chosen and locked."""
        return await self._act(selection, RETRYABLE, _retried)

    async def _act(
        self,
        selection: JobSelection,
        actionable: frozenset[JobStatus],
        change: Callable[[Job, datetime], bool],
    ) -> BulkOutcome:
        """Choose the jobs, then lock and change them CHUNK at a time, one transaction a
        chunk, each job with its own event, as the single-job use case would.

        A filter chooses, oldest first, jobs it matches that are in a status the action
        can leave (a snapshot taken without locks). Each chunk is then locked by id, in
        id order, *waiting* for rows another transaction holds (a worker's claim, heartbeat
        or completion, another bulk call): never skipping them, since a skipped job would
        be silently missed, and in one order, so that two bulk calls cannot deadlock
        (workers' claims skip locked rows and never wait on ours). A job is changed from
        the status it has once locked, which may differ from the snapshot's: a pending
        job claimed meanwhile becomes `cancelling`, one that finished meanwhile is
        unchanged. On SQLite the write transaction holds the whole database instead."""
        ids, more = await self._choose(selection, actionable)
        changed = matched = 0
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            async with self._uow() as uow:
                found, moved = await self._change(uow, chunk, change)
                await uow.commit()
            self._committed(moved)
            matched, changed = matched + found, changed + len({job for job, _, _ in moved})
        unchanged = (len(ids) if selection.ids is not None else matched) - changed
        outcome = BulkOutcome(matched, changed, unchanged, more)
        log.info("jobs.bulk", extra={"matched": matched, "changed": changed, "more": more})
        return outcome

    async def _choose(
        self, selection: JobSelection, actionable: frozenset[JobStatus]
    ) -> tuple[list[UUID], bool]:
        _check(selection)
        if selection.ids is not None:
            return list(dict.fromkeys(selection.ids)), False
        assert selection.filter is not None
        filt = selection.filter
        statuses = (filt.statuses or frozenset(JobStatus)) & actionable
        if not statuses:
            return [], False
        narrowed = replace(filt, statuses=statuses)
        query = JobQuery(filter=narrowed, sort=JobSort.OLDEST, limit=selection.limit + 1)
        async with self._uow(read_only=True) as uow:
            jobs = await uow.jobs.find(query)
        return [job.id for job in jobs[: selection.limit]], len(jobs) > selection.limit

    async def _change(
        self, uow: UnitOfWork, ids: list[UUID], change: Callable[[Job, datetime], bool]
    ) -> tuple[int, list[Change]]:
        """Lock the jobs of `ids` that exist, change those that can: (found, the changes)."""
        # Sorted, so that the rows are locked in one order across the adapter's chunks.
        jobs = await uow.jobs.get_many(sorted(ids), for_update=True)
        now = self._clock.now()
        moved = [job for job in jobs if _tried(change, job, now)]
        if not moved:
            return len(jobs), []
        return len(jobs), await self._save_many(uow, moved, CLIENT)


def _retried(job: Job, now: datetime) -> bool:
    job.retry(now)
    return True


def _tried(change: Callable[[Job, datetime], bool], job: Job, now: datetime) -> bool:
    try:
        return change(job, now)
    except InvalidTransition:
        return False  # the job is left as it was: `_move` checks before it changes


def _check(selection: JobSelection) -> None:
    if (selection.ids is None) == (selection.filter is None):
        raise ValidationFailed([FieldError((), "give either ids or filter")])
    if selection.ids is not None and not 1 <= len(selection.ids) <= MAX_IDS:
        raise ValidationFailed([FieldError(("ids",), f"1 to {MAX_IDS} ids")])
    if selection.filter is None:
        return
    filt = selection.filter
    if not 1 <= selection.limit <= MAX_LIMIT:
        raise ValidationFailed([FieldError(("limit",), f"must be 1 to {MAX_LIMIT}")])
    check_fields(
        lambda: filt.mime_type is None or check_mime_pattern(filt.mime_type),
        lambda: check_metadata_filters(filt.metadata),
    )
