"""Use cases of schedules: create or replace, see and delete them; run their due ticks.

A tick is taken in one transaction that locks its schedule, checks that the tick is
still due, creates the job and moves `next_run_at` on: however many processes run
`run_due_schedules` at once, each tick creates one job. Ticks missed while nothing ran
are not made up: the latest one runs once, and the next is the first after now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from chute.application.commands import (
    ScheduleSpec,
    field_problems,
    job_of_template,
    job_template,
)
from chute.application.errors import FieldError, ScheduleNotFound, ValidationFailed
from chute.application.ports import Calendar
from chute.application.use_cases.base import EngineBase
from chute.domain import SCHEDULER, InvalidValue, Schedule
from chute.domain import validation as rules

log = logging.getLogger("chute.engine")


@dataclass(frozen=True, slots=True)
class ScheduleSaved:
    """A schedule as stored by `put_schedule`; `created` when its name was new."""

    schedule: Schedule
    created: bool


class Scheduling(EngineBase):
    async def put_schedule(self, name: str, spec: ScheduleSpec) -> ScheduleSaved:
        """Create the schedule `name`, or replace it: its next run is the first time its
        (new) expression names after now, so that a change holds from the next tick."""
        calendar = self._schedules_calendar()
        now = self._clock.now()
        next_run = self._checked_next_run(calendar, name, spec, now)
        async with self._uow() as uow:
            while True:
                existing = await uow.schedules.get(name, for_update=True)
                schedule = Schedule(
                    name=name,
                    cron=spec.cron,
                    timezone=spec.timezone,
                    job=job_template(spec.job),
                    paused=spec.paused,
                    next_run_at=next_run,
                    last_run_at=existing.last_run_at if existing else None,
                    created_at=existing.created_at if existing else now,
                    updated_at=now,
                )
                if existing is not None:
                    await uow.schedules.update(schedule)
                    break
                if await uow.schedules.add(schedule):
                    break
                # Another transaction added it since our look-up: replace theirs.
            await uow.commit()
        created = existing is None
        log.info(
            "schedule.saved",
            extra={"schedule": name, "new": created, "cron": spec.cron, "paused": spec.paused},
        )
        return ScheduleSaved(schedule, created)

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name."""
        async with self._uow(read_only=True) as uow:
            return await uow.schedules.list()

    async def get_schedule(self, name: str) -> Schedule:
        """The schedule `name`; `ScheduleNotFound` when there is none."""
        async with self._uow(read_only=True) as uow:
            schedule = await uow.schedules.get(name)
        if schedule is None:
            raise ScheduleNotFound(name)
        return schedule

    async def delete_schedule(self, name: str) -> None:
        """Remove the schedule `name` (its jobs stay); `ScheduleNotFound` when none."""
        async with self._uow() as uow:
            if not await uow.schedules.delete(name):
                raise ScheduleNotFound(name)
            await uow.commit()
        log.info("schedule.deleted", extra={"schedule": name})

    async def run_due_schedules(self) -> datetime | None:
        """Create the job of every schedule whose next run has come; answer the earliest
        next run of any schedule afterwards (None when none is to run), for the caller
        to sleep until."""
        calendar = self._schedules_calendar()
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            due = await uow.schedules.due(now)
        for name in due:
            await self._run_tick(calendar, name, now)
        async with self._uow(read_only=True) as uow:
            return await uow.schedules.next_run()

    async def _run_tick(self, calendar: Calendar, name: str, now: datetime) -> None:
        async with self._uow() as uow:
            schedule = await uow.schedules.get(name, for_update=True)
            if schedule is None or not schedule.is_due(now):
                return  # another process took this tick, or the schedule changed
            assert schedule.next_run_at is not None  # is_due
            tick = calendar.latest(schedule.cron, schedule.timezone, now)
            tick = max(tick or schedule.next_run_at, schedule.next_run_at)
            new = job_of_template(schedule.job)
            problems = new.problems()
            job = None
            if not problems:
                job = self._new_job(new, now)
                job.schedule = name
                await uow.jobs.add([job])
                await self._record(uow, [job], SCHEDULER, name)
            schedule.last_run_at = tick
            schedule.next_run_at = calendar.next_after(schedule.cron, schedule.timezone, now)
            await uow.schedules.update(schedule)
            await uow.commit()
        if job is None:
            # Stored before a rule changed: the tick passes, and says why.
            log.error(
                "schedule.job_invalid",
                extra={"schedule": name, "errors": [f"{p.loc}: {p.msg}" for p in problems]},
            )
        else:
            log.info(
                "schedule.ran",
                extra={"schedule": name, "job_id": str(job.id), "tick": tick.isoformat()},
            )

    def _checked_next_run(
        self, calendar: Calendar, name: str, spec: ScheduleSpec, now: datetime
    ) -> datetime | None:
        problems = field_problems(lambda: rules.check_queue_name(name, "name")) + spec.problems()
        if not any(problem.loc == ("cron",) for problem in problems):
            try:
                calendar.check(spec.cron)
            except InvalidValue as e:
                problems.append(FieldError((e.field,), e.message))
        next_run = None
        if not any(problem.loc in {("cron",), ("timezone",)} for problem in problems):
            next_run = calendar.next_after(spec.cron, spec.timezone, now)
            if next_run is None:
                problems.append(FieldError(("cron",), "names no time in the next 50 years"))
        if problems:
            raise ValidationFailed(problems)
        return None if spec.paused else next_run

    def _schedules_calendar(self) -> Calendar:
        if self._calendar is None:
            raise RuntimeError(
                "this engine has no calendar: pass calendar=CronCalendar() "
                "(chute.adapters.cron) to use schedules"
            )
        return self._calendar
