"""What every group of use cases shares: the ports, and the few steps they all take."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from chute.application.commands import NewJob, UploadLimits
from chute.application.errors import JobNotFound
from chute.application.ports import (
    Calendar,
    Clock,
    ContentDetector,
    FileStore,
    IdGenerator,
    Telemetry,
    UnitOfWork,
    UnitOfWorkFactory,
    WebhookSender,
)
from chute.application.queries import job_matches
from chute.application.telemetry import Change, NoTelemetry, report_changes
from chute.application.webhooks import Webhook, WebhookPolicy
from chute.domain import Job, JobEvent, JobStatus, Mode, SourceType, WebhookDelivery
from chute.domain.webhooks import event_type

# The most jobs a list counts for its `total` (20 pages of 50, as search engines show
# "1,000+"): past it a count would pass over every match, which at a million jobs
# costs more than the page itself.
DEFAULT_COUNT_CAP = 1_000
# How long an engine trusts the webhooks it read: how late a webhook registered through
# another process hears of the first changes.
WEBHOOK_CACHE_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The backoff of failed attempts: uniform(0.5, 1) * min(cap, base * 2^(n-1)) seconds."""

    base_seconds: float = 1.0
    cap_seconds: float = 600.0


class EngineBase:
    """The ports of the engine and the steps its use cases share."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        files: FileStore,
        detectors: Mapping[Mode, ContentDetector],
        clock: Clock,
        ids: IdGenerator,
        limits: UploadLimits | None = None,
        retry: RetryPolicy | None = None,
        jitter: Callable[[], float] | None = None,
        count_cap: int = DEFAULT_COUNT_CAP,
        calendar: Calendar | None = None,
        webhook_sender: WebhookSender | None = None,
        webhook_policy: WebhookPolicy | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        if count_cap < 1:
            raise ValueError(f"count_cap must be 1 or more, not {count_cap}")
        self._uow, self._files, self._detectors = uow, files, detectors
        self._clock, self._ids = clock, ids
        self.limits = limits or UploadLimits()
        self.retry = retry or RetryPolicy()
        self._jitter = jitter or (lambda: random.uniform(0.5, 1.0))
        self.count_cap = count_cap
        self._calendar = calendar  # schedules need one (chute's: adapters.cron)
        self._webhook_sender = webhook_sender  # registering and sending webhooks need one
        self.webhook_policy = webhook_policy or WebhookPolicy()
        self._webhooks_seen: tuple[float, list[Webhook]] | None = None  # (when, webhooks)
        self._webhooks_reading = False  # a change is reading them again
        self._webhooks_generation = 0  # one more at each create or delete of this engine
        self.telemetry: Telemetry = telemetry or NoTelemetry()

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
            queue=spec.queue,
            run_after=due_after(spec.run_after, now),
            created_at=now,
            updated_at=now,
            trace_context=self.telemetry.trace_context(),
            changes=[(None, JobStatus.PENDING)],
        )

    @staticmethod
    async def _get_for_update(uow: UnitOfWork, job_id: UUID) -> Job:
        job = await uow.jobs.get(job_id, for_update=True)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def _save(
        self, uow: UnitOfWork, job: Job, actor: str, detail: str | None = None
    ) -> list[Change]:
        """Write a changed job, and one event for each status change it went through;
        the changes, for `_committed` once the unit of work has committed."""
        await uow.jobs.update(job)
        return await self._record(uow, [job], actor, detail)

    async def _save_many(
        self, uow: UnitOfWork, jobs: list[Job], actor: str, detail: str | None = None
    ) -> list[Change]:
        """`_save` of many jobs: one write of the jobs, one of their events."""
        await uow.jobs.update_many(jobs)
        return await self._record(uow, jobs, actor, detail)

    async def _record(
        self, uow: UnitOfWork, jobs: list[Job], actor: str, detail: str | None
    ) -> list[Change]:
        """Write one event for each status change of `jobs`, and the webhook deliveries
        they call for; the changes, for `_committed`."""
        changes = [(job, before, after) for job in jobs for before, after in job.take_changes()]
        await self._add_events(
            uow,
            [(job, JobEvent(job.id, job.updated_at, b, a, actor, detail)) for job, b, a in changes],
        )
        return changes

    async def _add_events(self, uow: UnitOfWork, changes: list[tuple[Job, JobEvent]]) -> None:
        """Append the events, and in the same transaction one delivery per webhook that
        asks for each (the outbox): a change committed is a change that will be told,
        and a change rolled back is told to no one. Every path that writes a JobEvent
        comes through here."""
        if not changes:
            return
        await uow.events.add([event for _, event in changes])
        webhooks = await self._current_webhooks(uow)
        if not webhooks:
            return
        deliveries = []
        for job, event in changes:
            kind = event_type(event.from_status, event.to_status)
            if kind is None:
                continue
            for webhook in webhooks:
                if kind in webhook.events and job_matches(job, webhook.filter):
                    deliveries.append(
                        WebhookDelivery(
                            id=self._ids.new_id(),
                            webhook_id=webhook.id,
                            event_type=kind,
                            job_id=job.id,
                            created_at=event.at,
                            next_attempt_at=event.at,
                        )
                    )
        if deliveries:
            await uow.deliveries.add(deliveries)

    async def _current_webhooks(self, uow: UnitOfWork) -> list[Webhook]:
        """The webhooks, read at most about once every `WEBHOOK_CACHE_SECONDS` by this
        engine: a status change must not pay a read of its own (changes are many,
        webhooks few and rarely changed). When the list is stale, one change reads it
        again while the others go on with the stale one, so that no burst of reads
        follows each expiry. This engine's own creates and deletes take effect at once;
        another process's within about that time."""
        now = time.monotonic()
        seen = self._webhooks_seen
        if seen is not None and (now - seen[0] < WEBHOOK_CACHE_SECONDS or self._webhooks_reading):
            return seen[1]
        self._webhooks_reading, generation = True, self._webhooks_generation
        try:
            found = await uow.webhooks.list()
        finally:
            self._webhooks_reading = False
        if generation == self._webhooks_generation:  # no create or delete meanwhile
            self._webhooks_seen = (now, found)
        return found

    def _forget_webhooks(self) -> None:
        self._webhooks_seen = None
        self._webhooks_generation += 1

    def _committed(self, changes: list[Change]) -> None:
        """Tell the telemetry about status changes that are committed now."""
        if changes:
            report_changes(self.telemetry, changes)


def due_after(run_after: datetime | None, now: datetime) -> datetime | None:
    """The `run_after` a new job is stored with: in UTC, and None (due now) for a time
    that has come already."""
    if run_after is None or run_after <= now:
        return None
    return run_after.astimezone(UTC)
