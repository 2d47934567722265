"""In-memory adapters: a real, shipped implementation of the storage ports.

A service can run the engine on them (nothing survives the process), and tests use
them for speed; they pass the same contract suite as the SQLAlchemy adapters.
Write units of work are serialised by one lock and see their own changes; they
publish them only on `commit()`, as a database transaction would.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self
from uuid import UUID, uuid4

from chute.adapters.memory.files import MemoryFileStore
from chute.adapters.memory.queries import (
    claimable,
    finished_per_minute,
    keyset_key,
    queue_counts,
    sort_key,
)
from chute.application.errors import IdempotencyConflict
from chute.application.ports import (
    DetectionResultRepository,
    IdempotencyKeyRepository,
    IdempotencyRecord,
    JobEventRepository,
    JobRepository,
    QueueRepository,
    ScheduleRepository,
    UnitOfWork,
    UnitOfWorkFactory,
    WebhookDeliveryRepository,
    WebhookRepository,
)
from chute.application.queries import (
    ClaimFilter,
    FedEvent,
    JobFilter,
    JobQuery,
    MinuteCounts,
    QueueCounts,
    job_matches,
)
from chute.application.webhooks import Webhook
from chute.domain import (
    DetectionResult,
    Job,
    JobEvent,
    JobStatus,
    QueueSettings,
    Schedule,
    WebhookDelivery,
)

__all__ = ["MemoryDatabase", "MemoryFileStore", "MemoryUnitOfWork"]


@dataclass
class _Tables:
    jobs: dict[UUID, Job] = field(default_factory=dict)
    detections: dict[UUID, DetectionResult] = field(default_factory=dict)
    keys: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    events: list[JobEvent] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)  # of `events`, given at commit
    queues: dict[str, QueueSettings] = field(default_factory=dict)
    schedules: dict[str, Schedule | None] = field(default_factory=dict)  # staged None: deleted
    webhooks: dict[UUID, Webhook | None] = field(default_factory=dict)  # staged None: deleted
    deliveries: dict[UUID, WebhookDelivery] = field(default_factory=dict)


class MemoryDatabase(UnitOfWorkFactory):
    """The in-memory store; call it to get a unit of work. Its deployment id is
    `deployment_id` when given, else a new random one."""

    def __init__(self, deployment_id: UUID | None = None) -> None:
        self._tables = _Tables()
        self._write_lock = asyncio.Lock()
        self.deployment_id = deployment_id or uuid4()

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> MemoryUnitOfWork:
        # `deferred` changes nothing here: conflicts are raised at once, as it allows.
        lock = None if read_only else self._write_lock
        return MemoryUnitOfWork(self._tables, lock, self.deployment_id)


class MemoryUnitOfWork(UnitOfWork):
    """A transaction over the in-memory tables: changes are staged until commit."""

    def __init__(self, tables: _Tables, lock: asyncio.Lock | None, deployment_id: UUID) -> None:
        self._tables, self._lock, self._deployment_id = tables, lock, deployment_id
        self._staged = _Tables()
        self._deleted_keys: set[tuple[str, str]] = set()
        self._deleted_jobs: set[UUID] = set()
        self._deleted_deliveries: set[UUID] = set()
        self.jobs = MemoryJobRepository(tables, self._staged, self._deleted_jobs)
        self.detections = MemoryDetectionResultRepository(self._staged)
        self.idempotency = MemoryIdempotencyKeyRepository(tables, self._staged, self._deleted_keys)
        self.events = MemoryJobEventRepository(tables, self._staged, self._deleted_jobs)
        self.queues = MemoryQueueRepository(tables, self._staged)
        self.schedules = MemoryScheduleRepository(tables, self._staged)
        self.webhooks = MemoryWebhookRepository(tables, self._staged)
        self.deliveries = MemoryWebhookDeliveryRepository(
            tables, self._staged, self._deleted_deliveries
        )

    async def __aenter__(self) -> Self:
        if self._lock is not None:
            await self._lock.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._rollback()
        if self._lock is not None:
            self._lock.release()

    async def commit(self) -> None:
        staged = self._staged
        if self._lock is None and (
            staged.jobs
            or staged.events
            or staged.queues
            or staged.schedules
            or staged.webhooks
            or staged.deliveries
            or self._deleted_jobs
            or self._deleted_deliveries
        ):
            raise RuntimeError("a read-only unit of work cannot commit changes")
        self._tables.jobs.update(self._staged.jobs)
        self._tables.queues.update(self._staged.queues)
        for name, schedule in self._staged.schedules.items():
            if schedule is None:
                self._tables.schedules.pop(name, None)
            else:
                self._tables.schedules[name] = schedule
        for webhook_id, webhook in self._staged.webhooks.items():
            if webhook is None:
                self._tables.webhooks.pop(webhook_id, None)
                self._tables.deliveries = {
                    k: d for k, d in self._tables.deliveries.items() if d.webhook_id != webhook_id
                }
            else:
                self._tables.webhooks[webhook_id] = webhook
        self._tables.deliveries.update(self._staged.deliveries)
        for delivery_id in self._deleted_deliveries:
            self._tables.deliveries.pop(delivery_id, None)
        self._tables.detections.update(self._staged.detections)
        for key in self._deleted_keys:
            self._tables.keys.pop(key, None)
        self._tables.keys.update(self._staged.keys)
        # Ids in commit order: the feed's order (commits are serialised by the lock).
        last = self._tables.event_ids[-1] if self._tables.event_ids else 0
        self._tables.events.extend(self._staged.events)
        self._tables.event_ids.extend(range(last + 1, last + 1 + len(self._staged.events)))
        if self._deleted_jobs:
            gone = self._deleted_jobs
            for job_id in gone:
                self._tables.jobs.pop(job_id, None)
                self._tables.detections.pop(job_id, None)
            kept = [
                (i, e)
                for i, e in zip(self._tables.event_ids, self._tables.events, strict=True)
                if e.job_id not in gone
            ]
            self._tables.event_ids[:] = [i for i, _ in kept]
            self._tables.events[:] = [e for _, e in kept]
        self._rollback()

    async def deployment_id(self) -> UUID:
        return self._deployment_id

    def _rollback(self) -> None:
        self._staged.jobs.clear()
        self._staged.detections.clear()
        self._staged.keys.clear()
        self._staged.events.clear()
        self._staged.queues.clear()
        self._staged.schedules.clear()
        self._staged.webhooks.clear()
        self._staged.deliveries.clear()
        self._deleted_keys.clear()
        self._deleted_jobs.clear()
        self._deleted_deliveries.clear()


class MemoryJobRepository(JobRepository):
    def __init__(self, tables: _Tables, staged: _Tables, deleted: set[UUID]) -> None:
        self._tables, self._staged, self._deleted = tables, staged, deleted

    async def add(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.id in self._tables.jobs or job.id in self._staged.jobs:
                raise ValueError(f"job {job.id} exists already")
            self._staged.jobs[job.id] = _copy(job)

    async def get(self, job_id: UUID, *, for_update: bool = False) -> Job | None:
        if job_id in self._deleted:
            return None
        job = self._staged.jobs.get(job_id) or self._tables.jobs.get(job_id)
        return self._out(job) if job else None

    async def get_many(self, job_ids: Sequence[UUID], *, for_update: bool = False) -> list[Job]:
        found = [await self.get(job_id) for job_id in job_ids]
        return [job for job in found if job is not None]

    async def update(self, job: Job) -> None:
        if not self._exists(job.id):
            raise ValueError(f"job {job.id} does not exist")
        self._staged.jobs[job.id] = _copy(job)

    async def update_many(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            await self.update(job)

    async def running_since(self, since: datetime, limit: int) -> list[Job]:
        running = [
            job
            for job in self._all()
            if job.status is JobStatus.RUNNING and job.updated_at >= since
        ]
        running.sort(key=lambda job: (job.updated_at, job.id))
        return [self._out(job) for job in running[:limit]]

    async def find(self, query: JobQuery) -> list[Job]:
        matching = [job for job in self._all() if job_matches(job, query.filter)]
        matching.sort(key=lambda job: sort_key(job, query.sort), reverse=query.sort.descending)
        if query.after is not None:
            mark = keyset_key(query.after, query.sort)
            if query.sort.descending:
                matching = [job for job in matching if sort_key(job, query.sort) < mark]
            else:
                matching = [job for job in matching if sort_key(job, query.sort) > mark]
        else:
            matching = matching[query.offset :]
        return [self._out(job) for job in matching[: query.limit]]

    async def count(self, filt: JobFilter, *, at_most: int | None = None) -> int:
        matching = (job for job in self._all() if job_matches(job, filt))
        return sum(1 for _ in itertools.islice(matching, at_most))

    async def lock_claimable(self, filt: ClaimFilter, now: datetime, limit: int) -> list[Job]:
        # Write units of work hold the one lock, so no other one can claim meanwhile.
        due = [job for job in self._all() if claimable(job, filt, now)]
        due.sort(key=lambda job: (-job.priority.rank, job.created_at, job.id))
        return [self._out(job) for job in due[:limit]]

    async def queue_names(self) -> set[str]:
        return {job.queue for job in self._all()}

    async def has_queue(self, queue: str) -> bool:
        return any(job.queue == queue for job in self._all())

    async def queue_counts(
        self, now: datetime, since: datetime, queues: Collection[str]
    ) -> dict[str, QueueCounts]:
        jobs = [job for job in self._all() if job.queue in queues]
        return queue_counts(jobs, now, since)

    async def finished_per_minute(self, since: datetime) -> list[MinuteCounts]:
        return finished_per_minute(self._all(), since)

    async def lock_expired(self, now: datetime, limit: int) -> list[Job]:
        expired = [
            job
            for job in self._all()
            if job.status.is_held and job.lease_expires_at and job.lease_expires_at <= now
        ]
        expired.sort(key=lambda job: (job.lease_expires_at, job.id))
        return [self._out(job) for job in expired[:limit]]

    async def lock_purgeable(
        self, statuses: frozenset[JobStatus], updated_before: datetime, limit: int
    ) -> list[Job]:
        old = [j for j in self._all() if j.status in statuses and j.updated_at < updated_before]
        old.sort(key=lambda job: (job.updated_at, job.id))
        return [self._out(job) for job in old[:limit]]

    async def delete(self, job_ids: Sequence[UUID]) -> int:
        found = [job_id for job_id in dict.fromkeys(job_ids) if self._exists(job_id)]
        for job_id in found:
            self._staged.jobs.pop(job_id, None)
            self._staged.detections.pop(job_id, None)
        self._deleted.update(found)
        return len(found)

    async def referenced_folders(self, folders: Sequence[UUID]) -> set[UUID]:
        # The folder of a key `{uuid}/{name}` is its first 36 characters, as in SQL.
        wanted = {str(folder): folder for folder in folders}
        keys = [job.content_key for job in self._all() if job.content_key]
        return {wanted[key[:36]] for key in keys if key[:36] in wanted}

    def _out(self, job: Job) -> Job:
        """A copy of a stored job, with its detection result as the SQL adapters join it."""
        copied = _copy(job)
        detection = self._staged.detections.get(job.id) or self._tables.detections.get(job.id)
        copied.detection = detection
        return copied

    def _exists(self, job_id: UUID) -> bool:
        stored = job_id in self._tables.jobs or job_id in self._staged.jobs
        return stored and job_id not in self._deleted

    def _all(self) -> list[Job]:
        jobs = {**self._tables.jobs, **self._staged.jobs}
        return [job for job_id, job in jobs.items() if job_id not in self._deleted]


class MemoryJobEventRepository(JobEventRepository):
    def __init__(self, tables: _Tables, staged: _Tables, deleted_jobs: set[UUID]) -> None:
        self._tables, self._staged, self._deleted_jobs = tables, staged, deleted_jobs

    async def add(self, events: Sequence[JobEvent]) -> None:
        self._staged.events.extend(events)

    async def list(self, job_id: UUID) -> list[JobEvent]:
        if job_id in self._deleted_jobs:
            return []
        return [e for e in [*self._tables.events, *self._staged.events] if e.job_id == job_id]

    async def feed(self, after: int | None, limit: int) -> Sequence[FedEvent]:
        ids, events = self._tables.event_ids, self._tables.events
        start = 0 if after is None else bisect.bisect_right(ids, after)
        return [
            FedEvent(ids[i], (0, ids[i]), events[i])
            for i in range(start, min(start + limit, len(ids)))
        ]

    async def feed_head(self) -> FedEvent | None:
        ids, events = self._tables.event_ids, self._tables.events
        return FedEvent(ids[-1], (0, ids[-1]), events[-1]) if ids else None

    async def feed_position(self, event_id: int) -> tuple[int, int] | None:
        ids = self._tables.event_ids
        found = bisect.bisect_left(ids, event_id)
        return (0, event_id) if found < len(ids) and ids[found] == event_id else None


class MemoryQueueRepository(QueueRepository):
    # Write units of work hold the one lock: `lock` needs none of its own.
    def __init__(self, tables: _Tables, staged: _Tables) -> None:
        self._tables, self._staged = tables, staged

    async def list(self) -> list[QueueSettings]:
        names = sorted({*self._tables.queues, *self._staged.queues})
        return [found for name in names if (found := await self.get(name)) is not None]

    async def get(self, name: str) -> QueueSettings | None:
        found = self._staged.queues.get(name) or self._tables.queues.get(name)
        return copy.copy(found) if found else None

    async def lock(self, name: str) -> QueueSettings | None:
        return await self.get(name)

    async def add_if_absent(self, settings: QueueSettings) -> None:
        if await self.get(settings.name) is None:
            self._staged.queues[settings.name] = copy.copy(settings)

    async def update(self, settings: QueueSettings) -> None:
        if await self.get(settings.name) is None:
            raise ValueError(f"queue {settings.name!r} has no settings")
        self._staged.queues[settings.name] = copy.copy(settings)

    async def for_claims(self) -> Sequence[tuple[QueueSettings, int]]:
        jobs = [*{**self._tables.jobs, **self._staged.jobs}.values()]
        return [
            (s, sum(1 for j in jobs if j.queue == s.name and j.status.is_held))
            for s in await self.list()
        ]

    async def take_room(self, queue: QueueSettings, held: int, job_ids: Sequence[UUID]) -> int:
        # One writer at a time: the whole limit is one room, and nothing has changed
        # since the claim read `queue` and `held`; held jobs are counted from the jobs.
        return min(queue.capacity(held) or 0, len(job_ids))

    async def spread(self, name: str, limit: int | None) -> None:
        pass  # one room, counted from the jobs themselves


class MemoryScheduleRepository(ScheduleRepository):
    # Write units of work hold the one lock: `for_update` needs none of its own.
    def __init__(self, tables: _Tables, staged: _Tables) -> None:
        self._tables, self._staged = tables, staged

    async def list(self) -> list[Schedule]:
        names = sorted({*self._tables.schedules, *self._staged.schedules})
        return [found for name in names if (found := await self.get(name)) is not None]

    async def get(self, name: str, *, for_update: bool = False) -> Schedule | None:
        if name in self._staged.schedules:
            found = self._staged.schedules[name]
        else:
            found = self._tables.schedules.get(name)
        return copy.deepcopy(found)

    async def add(self, schedule: Schedule) -> bool:
        if await self.get(schedule.name) is not None:
            return False
        self._staged.schedules[schedule.name] = copy.deepcopy(schedule)
        return True

    async def update(self, schedule: Schedule) -> None:
        if await self.get(schedule.name) is None:
            raise ValueError(f"no schedule is named {schedule.name!r}")
        self._staged.schedules[schedule.name] = copy.deepcopy(schedule)

    async def save_runs(self, schedules: Sequence[Schedule]) -> None:
        for schedule in schedules:
            stored = await self.get(schedule.name)
            if stored is None:
                raise ValueError(f"no schedule is named {schedule.name!r}")
            stored.next_run_at, stored.last_run_at = schedule.next_run_at, schedule.last_run_at
            self._staged.schedules[schedule.name] = stored

    async def delete(self, name: str) -> bool:
        if await self.get(name) is None:
            return False
        self._staged.schedules[name] = None
        return True

    async def take_due(self, now: datetime, limit: int) -> Sequence[Schedule]:
        due = [s for s in await self.list() if s.is_due(now)]
        return sorted(due, key=lambda s: (s.next_run_at, s.name))[:limit]

    async def next_run(self) -> datetime | None:
        runs = [s.next_run_at for s in await self.list() if not s.paused and s.next_run_at]
        return min(runs, default=None)


class MemoryWebhookRepository(WebhookRepository):
    def __init__(self, tables: _Tables, staged: _Tables) -> None:
        self._tables, self._staged = tables, staged

    async def add(self, webhook: Webhook) -> None:
        if await self.get(webhook.id) is not None:
            raise ValueError(f"webhook {webhook.id} exists already")
        self._staged.webhooks[webhook.id] = copy.deepcopy(webhook)

    async def get(self, webhook_id: UUID) -> Webhook | None:
        if webhook_id in self._staged.webhooks:
            found = self._staged.webhooks[webhook_id]
        else:
            found = self._tables.webhooks.get(webhook_id)
        return copy.deepcopy(found)

    async def list(self) -> list[Webhook]:
        ids = {*self._tables.webhooks, *self._staged.webhooks}
        found = [w for webhook_id in ids if (w := await self.get(webhook_id)) is not None]
        return sorted(found, key=lambda w: (w.created_at, w.id))

    async def delete(self, webhook_id: UUID) -> bool:
        if await self.get(webhook_id) is None:
            return False
        self._staged.webhooks[webhook_id] = None
        for key, delivery in list(self._staged.deliveries.items()):
            if delivery.webhook_id == webhook_id:
                del self._staged.deliveries[key]
        return True

    async def set_paused(self, webhook_id: UUID, paused: bool) -> bool:
        webhook = await self.get(webhook_id)
        if webhook is None:
            return False
        webhook.paused = paused
        self._staged.webhooks[webhook_id] = webhook
        return True


class MemoryWebhookDeliveryRepository(WebhookDeliveryRepository):
    # Write units of work hold the one lock: claims and purges need none of their own.
    def __init__(self, tables: _Tables, staged: _Tables, deleted: set[UUID]) -> None:
        self._tables, self._staged, self._deleted = tables, staged, deleted

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> None:
        for delivery in deliveries:
            if delivery.id in self._tables.deliveries or delivery.id in self._staged.deliveries:
                raise ValueError(f"delivery {delivery.id} exists already")
            self._staged.deliveries[delivery.id] = copy.copy(delivery)

    async def latest(self, webhook_id: UUID, limit: int) -> list[WebhookDelivery]:
        found = [d for d in self._all() if d.webhook_id == webhook_id]
        found.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return [copy.copy(d) for d in found[:limit]]

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookDelivery]:
        # A paused webhook's deliveries wait; those of a deleted one are taken (and
        # given up), as the SQL claim does.
        every = {**self._tables.webhooks, **self._staged.webhooks}
        paused = {key for key, w in every.items() if w is not None and w.paused}
        due = [
            d
            for d in self._all()
            if d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and (d.lease_expires_at is None or d.lease_expires_at <= now)
            and d.webhook_id not in paused
        ]
        due.sort(key=lambda d: (d.next_attempt_at, d.id))
        taken = []
        for delivery in due[:limit]:
            held = copy.copy(delivery)
            held.lease_expires_at = lease_until
            self._staged.deliveries[held.id] = held
            taken.append(copy.copy(held))
        return taken

    async def update_many(self, deliveries: Sequence[WebhookDelivery]) -> None:
        for delivery in deliveries:
            if delivery.id in self._deleted or (
                delivery.id not in self._tables.deliveries
                and delivery.id not in self._staged.deliveries
            ):
                continue  # its webhook was deleted meanwhile, and it with it (or purged)
            self._staged.deliveries[delivery.id] = copy.copy(delivery)

    async def purge_settled(self, before: datetime, limit: int) -> int:
        settled = [
            d
            for d in self._all()
            if d.next_attempt_at is None
            and any(at is not None and at < before for at in (d.delivered_at, d.given_up_at))
        ]
        for delivery in settled[:limit]:
            self._staged.deliveries.pop(delivery.id, None)
            self._deleted.add(delivery.id)
        return len(settled[:limit])

    def _all(self) -> list[WebhookDelivery]:
        every = {**self._tables.deliveries, **self._staged.deliveries}
        return [d for key, d in every.items() if key not in self._deleted]


class MemoryDetectionResultRepository(DetectionResultRepository):
    def __init__(self, staged: _Tables) -> None:
        self._staged = staged

    async def add(self, job_id: UUID, result: DetectionResult) -> None:
        self._staged.detections[job_id] = result


class MemoryIdempotencyKeyRepository(IdempotencyKeyRepository):
    def __init__(self, tables: _Tables, staged: _Tables, deleted: set[tuple[str, str]]) -> None:
        self._tables, self._staged, self._deleted = tables, staged, deleted

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        if (scope, key) in self._staged.keys:
            return self._staged.keys[(scope, key)]
        return None if (scope, key) in self._deleted else self._tables.keys.get((scope, key))

    async def add(self, record: IdempotencyRecord) -> None:
        if await self.get(record.scope, record.key) is not None:
            raise IdempotencyConflict()
        self._staged.keys[(record.scope, record.key)] = record

    async def delete(self, scope: str, key: str) -> None:
        self._staged.keys.pop((scope, key), None)
        self._deleted.add((scope, key))

    async def delete_older(self, created_before: datetime) -> int:
        records = [await self.get(*key) for key in {*self._tables.keys, *self._staged.keys}]
        old = [r for r in records if r is not None and r.created_at < created_before]
        for record in old:
            await self.delete(record.scope, record.key)
        return len(old)


def _copy(job: Job) -> Job:
    """Jobs go in and out as copies, so that callers never change stored state in place."""
    copied = copy.deepcopy(job)
    copied.changes = []  # not stored: the engine records changes as events
    copied.detection = None  # not part of the job's row: the detections repository has it
    return copied
