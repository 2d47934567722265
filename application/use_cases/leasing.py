"""Use cases of workers: claim jobs under a lease, report on them, and rescue the lost."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from chute.application.commands import check_fields, checked_claim
from chute.application.errors import JobNotFound, ServiceUnavailable
from chute.application.ports import UnitOfWork
from chute.application.queries import ClaimFilter
from chute.application.telemetry import Change
from chute.application.use_cases.base import EngineBase
from chute.domain import RESCUER, ChuteError, Job, QueueSettings, backoff
from chute.domain import validation as rules

log = logging.getLogger("chute.engine")

# With some queue skipped, at most this many others are looked at one by one.
MAX_QUEUES_APART = 8


class Working(EngineBase):
    async def claim_jobs(
        self,
        worker_id: str,
        *,
        limit: int = 1,
        lease_seconds: int = 60,
        filter: ClaimFilter | None = None,
    ) -> list[Job]:
        """Hand up to `limit` due pending jobs to `worker_id`, highest priority then oldest
        first, each under a lease of `lease_seconds`. Safe with any number of workers:
        no job of a paused queue is claimed, and a queue's concurrency limit holds across
        all of them."""
        filt = checked_claim(worker_id, limit, lease_seconds, filter)
        now = self._clock.now()
        async with self._uow() as uow:
            jobs, changes = await self._claim_within(
                uow, worker_id, limit, lease_seconds, filt, now
            )
            await uow.commit()
        self._committed(changes)
        _log_claimed(jobs, worker_id)
        return jobs

    async def complete_and_claim(
        self,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        *,
        limit: int,
        lease_seconds: int = 60,
        filter: ClaimFilter | None = None,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """`complete_jobs`, then `claim_jobs` of up to `limit` jobs, in one transaction:
        a worker's finished jobs and the next ones for their slots cost one commit. The
        outcomes of the completions, in order, and the jobs claimed. Room the completed
        jobs free in a queue with a concurrency limit is left to the next claim. When
        one job's row fails the transaction, each is completed alone and the claim made
        apart (when the claim then fails, it claims nothing)."""
        filt = checked_claim(worker_id, limit, lease_seconds, filter)
        try:
            async with self._uow() as uow:
                now = self._clock.now()
                outcomes, done = await self._complete_within(uow, worker_id, completions, now)
                jobs, changes = await self._claim_within(
                    uow, worker_id, limit, lease_seconds, filt, now, done
                )
                await uow.commit()
        except ServiceUnavailable:
            raise
        except Exception:
            log.warning("job.completions_isolated", extra={"count": len(completions)})
            return await self._complete_then_claim(
                worker_id, completions, limit, lease_seconds, filt
            )
        self._committed(changes)
        _log_completed(outcomes, worker_id)
        _log_claimed(jobs, worker_id)
        return outcomes, jobs

    async def _complete_then_claim(
        self,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        limit: int,
        lease_seconds: int,
        filt: ClaimFilter,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """`complete_and_claim` apart: once the completions are recorded, their outcomes
        are the answer; a claim that fails then claims nothing (its worker claims again)."""
        outcomes = await self.complete_jobs(worker_id, completions)
        try:
            claimed = await self.claim_jobs(
                worker_id, limit=limit, lease_seconds=lease_seconds, filter=filt
            )
        except Exception as e:
            log.warning(
                "job.claim_failed", extra={"worker_id": worker_id, "error": type(e).__name__}
            )
            claimed = []
        return outcomes, claimed

    async def _claim_within(
        self,
        uow: UnitOfWork,
        worker_id: str,
        limit: int,
        lease_seconds: int,
        filt: ClaimFilter,
        now: datetime,
        unwritten: Sequence[Job] = (),
    ) -> tuple[list[Job], list[Change]]:
        """The claim of `claim_jobs` in `uow`, not committed: the jobs, in claim order,
        and the changes. `unwritten`: jobs changed before, written with the first jobs
        claimed (one statement for both). Until then, those a limited queue held still
        count in its room: the room they free goes to the next claim, not this one."""
        changes: list[Change] = []
        settings = await uow.queues.for_claims()
        paused = frozenset(s.name for s, _ in settings if s.paused)
        limited = {s.name: (s, held) for s, held in settings if s.concurrency_limit}
        # Full as last committed: not worth a look (one that frees up meanwhile waits
        # for the next claim; one that fills up meanwhile is caught by `take_room`).
        full = frozenset(s.name for s, held in settings if s.capacity(held) == 0)
        skip = filt.skip_queues | paused | full
        jobs: list[Job] = []
        while len(jobs) < limit:
            # Claimed and written before any second look, so that a second look
            # neither finds them again nor leaves them out of their queue's count.
            rooms = {name: s.capacity(held) or 0 for name, (s, held) in limited.items()}
            candidates = await _lock_candidates(uow, filt, skip, rooms, now, limit - len(jobs))
            taken, full = await _within_limits(uow, candidates, limited)
            for job in taken:
                job.claim(worker_id, lease_seconds, now)
            changes += await self._save_many(uow, [*unwritten, *taken], worker_id)
            jobs, unwritten = jobs + taken, ()
            if not full:
                break
            # Some were left in queues that filled up: look again without those, so
            # that their backlog never stands in front of other queues' jobs.
            skip |= full
        jobs.sort(key=_claim_order)
        return jobs, changes

    async def heartbeat(
        self,
        job_id: UUID,
        worker_id: str,
        *,
        lease_seconds: int | None = None,
        progress: int | None = None,
        progress_message: str | None = None,
    ) -> Job:
        """Extend the lease of a held job and note its progress. A job that comes back
        `cancelling` tells its worker to stop and report."""
        check_fields(
            lambda: rules.check_worker_id(worker_id),
            lambda: lease_seconds is None or rules.check_lease_seconds(lease_seconds),
            lambda: progress is None or rules.check_progress(progress),
            lambda: (
                progress_message is None or rules.check_text("progress_message", progress_message)
            ),
        )
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.heartbeat(
                worker_id,
                self._clock.now(),
                lease_seconds=lease_seconds,
                progress=progress,
                progress_message=progress_message,
            )
            await uow.jobs.update(job)
            await uow.commit()
        log.info(
            "job.heartbeat",
            extra={
                "job_id": str(job_id),
                "worker_id": worker_id,
                "status": job.status,
                "progress": job.progress,
            },
        )
        return job

    async def complete_job(
        self, job_id: UUID, worker_id: str, *, result: dict[str, Any] | None = None
    ) -> Job:
        """Record the work on a held job as done, with its result."""
        (outcome,) = await self.complete_jobs(worker_id, [(job_id, result)])
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def complete_jobs(
        self, worker_id: str, completions: Sequence[tuple[UUID, dict[str, Any] | None]]
    ) -> list[Job | Exception]:
        """`complete_job` of many held jobs (job id, result) in one transaction: each
        job's outcome, in order, is the job completed or the error that refused it alone
        (`ValidationFailed`, `JobNotFound`, `LeaseNotHeld`, `InvalidTransition`, or what
        failed the writing of its row). Raises `ServiceUnavailable` for all of them."""
        check_fields(lambda: rules.check_worker_id(worker_id))
        try:
            outcomes = await self._complete_together(worker_id, completions)
        except ServiceUnavailable:
            raise
        except Exception:
            if len(completions) == 1:
                raise
            # One job's row failed the transaction of all (a value the database refused):
            # each on its own then, so that only that job's completion fails.
            log.warning("job.completions_isolated", extra={"count": len(completions)})
            outcomes = [await self._complete_alone(worker_id, item) for item in completions]
        _log_completed(outcomes, worker_id)
        return outcomes

    async def _complete_together(
        self, worker_id: str, completions: Sequence[tuple[UUID, dict[str, Any] | None]]
    ) -> list[Job | Exception]:
        async with self._uow() as uow:
            now = self._clock.now()
            outcomes, done = await self._complete_within(uow, worker_id, completions, now)
            changes = await self._save_many(uow, done, worker_id)
            await uow.commit()
        self._committed(changes)
        return outcomes

    @staticmethod
    async def _complete_within(
        uow: UnitOfWork,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        now: datetime,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """The completions of `complete_jobs` in `uow`, not written: each outcome, and
        the jobs completed."""
        held = await uow.jobs.get_many([job_id for job_id, _ in completions], for_update=True)
        found = {job.id: job for job in held}
        outcomes = [
            _completed(found.get(job_id), job_id, worker_id, now, result)
            for job_id, result in completions
        ]
        return outcomes, [job for job in outcomes if isinstance(job, Job)]

    async def _complete_alone(
        self, worker_id: str, completion: tuple[UUID, dict[str, Any] | None]
    ) -> Job | Exception:
        try:
            (outcome,) = await self._complete_together(worker_id, [completion])
        except ServiceUnavailable:
            raise
        except Exception as e:  # this job's own failure: its outcome
            return e
        return outcome

    async def fail_job(
        self, job_id: UUID, worker_id: str, error: str, *, retryable: bool = True
    ) -> Job:
        """Record a failed attempt on a held job: back to pending after a backoff while
        attempts are left and the error is retryable, else failed."""
        check_fields(
            lambda: rules.check_worker_id(worker_id),
            lambda: rules.check_error(error),
        )
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            now = self._clock.now()
            job.check_holder(worker_id, now)
            wait = backoff(
                job.attempts,
                base=self.retry.base_seconds,
                cap=self.retry.cap_seconds,
                jitter=self._jitter(),
            )
            job.fail(now, error, retryable=retryable, backoff=wait)
            changes = await self._save(uow, job, worker_id, error)
            await uow.commit()
        self._committed(changes)
        log.info(
            "job.failed",
            extra={
                "job_id": str(job_id),
                "worker_id": worker_id,
                "status": job.status,
                "attempt": job.attempts,
            },
        )
        return job

    async def release_job(self, job_id: UUID, worker_id: str) -> Job:
        """Give a held job back unfinished (its worker stops), so another takes it at once."""
        check_fields(lambda: rules.check_worker_id(worker_id))
        async with self._uow() as uow:
            job = await self._get_for_update(uow, job_id)
            job.check_holder(worker_id, self._clock.now())
            job.release(self._clock.now())
            changes = await self._save(uow, job, worker_id, "released by a stopping worker")
            await uow.commit()
        self._committed(changes)
        log.info("job.released", extra={"job_id": str(job_id), "worker_id": worker_id})
        return job

    async def rescue_expired_leases(self, *, limit: int = 100) -> list[Job]:
        """Take back up to `limit` jobs whose worker's lease ended: pending again while
        attempts are left, else failed; cancelling ones become cancelled. Safe to run in
        many places at once: each job is rescued once, and never after it moved on."""
        now = self._clock.now()
        async with self._uow() as uow:
            jobs = await uow.jobs.lock_expired(now, limit)
            for job in jobs:
                job.expire_lease(now)
            changes = await self._save_many(uow, jobs, RESCUER, "lease expired")
            await uow.commit()
        self._committed(changes)
        for job in jobs:
            log.info("job.rescued", extra={"job_id": str(job.id), "status": job.status})
        return jobs


def _log_claimed(jobs: list[Job], worker_id: str) -> None:
    for job in jobs:
        log.info(
            "job.claimed",
            extra={"job_id": str(job.id), "worker_id": worker_id, "attempt": job.attempts},
        )


def _log_completed(outcomes: list[Job | Exception], worker_id: str) -> None:
    for job in outcomes:
        if isinstance(job, Job):
            log.info("job.completed", extra={"job_id": str(job.id), "worker_id": worker_id})


def _completed(
    job: Job | None, job_id: UUID, worker_id: str, now: datetime, result: dict[str, Any] | None
) -> Job | Exception:
    """One job of `complete_jobs`: completed, or the error that refuses it."""
    try:
        check_fields(lambda: result is None or rules.check_result(result))
        if job is None:
            raise JobNotFound(job_id)
        job.check_holder(worker_id, now)
        job.complete(now, result)
    except ChuteError as e:
        return e
    return job


async def _lock_candidates(
    uow: UnitOfWork,
    filt: ClaimFilter,
    skip: frozenset[str],
    rooms: dict[str, int],
    now: datetime,
    wanted: int,
) -> list[Job]:
    """Up to `wanted` claimable jobs, locked, in claim order, of no queue in `skip`, and
    of a limited queue at most its room as last committed (`rooms`).

    One look across queues walks the claim order of every queue: it passes over the
    backlog of the skipped ones (a paused queue, a full limited one) to reach the
    others, and takes as many of a limited queue's jobs as come first, more than its
    room (they are then left, and the claim looks again). So when a queue is skipped,
    or a limited one has less room than is wanted, and few queues are left, each is
    looked at alone instead, by its own index, for at most its room, and the best
    `wanted` of them kept (on PostgreSQL the others stay locked until commit: claims
    skip them meanwhile).
    """
    if skip or any(room < wanted for room in rooms.values()):
        names = filt.queues or frozenset(await uow.jobs.queue_names())
        left = sorted(names - skip)
        if len(left) <= MAX_QUEUES_APART:
            found: list[Job] = []
            for name in left:
                alone = replace(filt, queues=frozenset({name}), skip_queues=frozenset())
                most = min(wanted, rooms.get(name, wanted))
                found += await uow.jobs.lock_claimable(alone, now, most) if most else []
            return sorted(found, key=_claim_order)[:wanted]
    return await uow.jobs.lock_claimable(replace(filt, skip_queues=skip), now, wanted)


async def _within_limits(
    uow: UnitOfWork, candidates: list[Job], limited: dict[str, tuple[QueueSettings, int]]
) -> tuple[list[Job], frozenset[str]]:
    """The candidates the limits let through (room taken for those of limited queues),
    and the limited queues that had no room for all of theirs. `limited` holds each
    limited queue's settings and held jobs as the claim read them first, and counts
    the jobs this claim takes in."""
    taken: list[Job] = []
    full: set[str] = set()
    by_queue: dict[str, list[Job]] = {}
    for job in candidates:
        if job.queue in limited:
            by_queue.setdefault(job.queue, []).append(job)
        else:
            taken.append(job)
    for name, jobs in sorted(by_queue.items()):
        settings, held = limited[name]
        room = await uow.queues.take_room(settings, held, [job.id for job in jobs])
        if room < len(jobs):
            full.add(name)
        kept = jobs[:room]
        limited[name] = (settings, held + len(kept))
        taken += kept
    return taken, frozenset(full)


def _claim_order(job: Job) -> tuple[int, datetime, UUID]:
    return (-job.priority.rank, job.created_at, job.id)
