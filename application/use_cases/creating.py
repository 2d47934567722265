"""Use cases that create jobs from references, with idempotency keys."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from chute.application.commands import NewJob, field_problems, fingerprint, validate_batch
from chute.application.errors import (
    FieldError,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    ValidationFailed,
)
from chute.application.ports import IdempotencyRecord, UnitOfWork
from chute.application.use_cases.base import EngineBase
from chute.domain import CLIENT, Job
from chute.domain import validation as rules

log = logging.getLogger("chute.engine")

IDEMPOTENCY_TTL = timedelta(hours=24)
MAX_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Submission:
    """The jobs of a create request; `replayed` when an idempotency key answered it."""

    jobs: list[Job]
    replayed: bool = False

    @property
    def job(self) -> Job:
        return self.jobs[0]


class Creating(EngineBase):
    async def create_job(self, new: NewJob, *, idempotency_key: str | None = None) -> Submission:
        """Create one job from a reference. A repeated idempotency key replays the first."""
        problems = new.problems(self._clock.now()) + _key_problems(idempotency_key)
        if problems:
            raise ValidationFailed(problems)
        return await self._create([new], "jobs", idempotency_key)

    async def create_jobs(
        self, new: Sequence[NewJob], *, idempotency_key: str | None = None
    ) -> Submission:
        """Create many jobs at once: all of them or, when any is invalid, none."""
        if not 1 <= len(new) <= MAX_BATCH:
            raise ValidationFailed([FieldError((), f"a batch holds 1 to {MAX_BATCH} jobs")])
        validate_batch(new, self._clock.now())
        if problems := _key_problems(idempotency_key):
            raise ValidationFailed(problems)
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
        # Deferred: its inserts may be committed with other creates' (group commit), and
        # a taken key then raises IdempotencyConflict from commit(), handled as from add.
        async with self._uow(deferred=True) as uow:
            if key:
                replay = await self._replay_in(uow, scope, key, digest)
                if replay is not None:
                    return replay
            jobs = [self._new_job(spec, now) for spec in new]
            await uow.jobs.add(jobs)
            changes = await self._record(uow, jobs, CLIENT, None)
            if key:
                ids = tuple(job.id for job in jobs)
                await uow.idempotency.add(IdempotencyRecord(scope, key, digest, ids, now))
            await uow.commit()
        self._committed(changes)
        # One line a use case: a batch's jobs are in their own histories (a line for
        # each of 1,000 jobs cost 15% of a batch's time).
        if scope == "jobs/batch":
            log.info("jobs.created", extra={"count": len(jobs)})
        else:
            [job] = jobs
            log.info("job.created", extra={"job_id": str(job.id), "source_type": job.source_type})
        return Submission(jobs)

    async def _replay(self, scope: str, key: str, digest: str) -> Submission | None:
        async with self._uow(deferred=True) as uow:
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
        jobs = await uow.jobs.get_many(record.job_ids)
        if len(jobs) < len(record.job_ids):
            # Retention purged its jobs: nothing is left to replay, so the key is spent.
            await uow.idempotency.delete(scope, key)
            return None
        log.info("job.create_replayed", extra={"job_ids": [str(j.id) for j in jobs]})
        return Submission(jobs, replayed=True)


def _key_problems(key: str | None) -> list[FieldError]:
    """What is wrong with an idempotency key (its length; text no database stores)."""
    return field_problems(lambda: key is None or rules.check_idempotency_key(key))
