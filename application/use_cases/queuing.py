"""Use cases of operators on queues: see them with their counts, pause them, limit them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from chute.application.commands import check_fields
from chute.application.errors import FieldError, QueueNotFound, ValidationFailed
from chute.application.ports import UnitOfWork
from chute.application.queries import MinuteCounts, QueueCounts, QueueView
from chute.application.use_cases.base import EngineBase
from chute.domain import QueueSettings
from chute.domain import validation as rules

log = logging.getLogger("chute.engine")

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
MAX_MINUTES = 24 * 60  # the longest window `finished_per_minute` answers


@dataclass(frozen=True, kw_only=True)
class QueueChange:
    """What to change on a queue: `paused` unless None; `concurrency_limit` (None lifts
    the limit) only when `set_concurrency_limit`."""

    paused: bool | None = None
    concurrency_limit: int | None = None
    set_concurrency_limit: bool = False


class Queuing(EngineBase):
    async def list_queues(self) -> list[QueueView]:
        """Every queue some job or some setting names, by name."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            settings = {s.name: s for s in await uow.queues.list()}
            with_jobs = await uow.jobs.queue_names()
            counts = await uow.jobs.queue_counts(now, now - HOUR, with_jobs)
            names = settings.keys() | with_jobs
        return [_view(name, settings.get(name), counts.get(name)) for name in sorted(names)]

    async def finished_per_minute(self, minutes: int = 60) -> list[MinuteCounts]:
        """The jobs of every queue completed and failed in each of the last `minutes`
        minutes (UTC), oldest first, the current (partial) minute last; a minute with
        none counts zeros. One read of the jobs that finished since the first minute."""
        if not 1 <= minutes <= MAX_MINUTES:
            raise ValidationFailed([FieldError(("minutes",), f"must be 1 to {MAX_MINUTES}")])
        now = self._clock.now()
        current = now.replace(second=0, microsecond=0)
        first = current - (minutes - 1) * MINUTE
        async with self._uow(read_only=True) as uow:
            found = {c.minute: c for c in await uow.jobs.finished_per_minute(first)}
        window = (first + i * MINUTE for i in range(minutes))
        return [found.get(minute) or MinuteCounts(minute) for minute in window]

    async def get_queue(self, name: str) -> QueueView:
        """One queue; `QueueNotFound` when no job or setting names it."""
        async with self._uow(read_only=True) as uow:
            return await self._view_in(uow, name)

    async def update_queue(self, name: str, change: QueueChange) -> QueueView:
        """Pause, resume or limit a queue, giving it settings when it has none yet (so
        that a limit can be set before its jobs arrive)."""
        check_fields(
            lambda: rules.check_queue_name(name, "name"),
            lambda: (
                not change.set_concurrency_limit
                or rules.check_concurrency_limit(change.concurrency_limit)
            ),
        )
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.queues.add_if_absent(QueueSettings(name=name, updated_at=now))
            settings = await uow.queues.lock(name)
            assert settings is not None  # added above, or by another transaction
            if change.paused is not None:
                settings.paused = change.paused
            if change.set_concurrency_limit:
                settings.concurrency_limit = change.concurrency_limit
            settings.updated_at = now
            await uow.queues.update(settings)
            if change.set_concurrency_limit:
                await uow.queues.spread(name, settings.concurrency_limit)
            view = await self._view_in(uow, name)
            await uow.commit()
        log.info(
            "queue.updated",
            extra={"queue": name, "paused": view.paused, "limit": view.concurrency_limit},
        )
        return view

    async def _view_in(self, uow: UnitOfWork, name: str) -> QueueView:
        now = self._clock.now()
        settings = await uow.queues.get(name)
        if settings is None and not await uow.jobs.has_queue(name):
            raise QueueNotFound(name)
        counts = await uow.jobs.queue_counts(now, now - HOUR, [name])
        return _view(name, settings, counts.get(name))


def _view(name: str, settings: QueueSettings | None, counts: QueueCounts | None) -> QueueView:
    return QueueView(
        name=name,
        paused=settings.paused if settings else False,
        concurrency_limit=settings.concurrency_limit if settings else None,
        counts=counts or QueueCounts(),
    )
