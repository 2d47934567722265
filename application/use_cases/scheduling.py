"""Use cases of schedules: create or replace, see and delete them; run their due ticks.

A tick is taken in a transaction that locks its schedule while it is due (skipping
schedules another process holds), creates the job and moves `next_run_at` on: however
many processes run `run_due_schedules` at once, each tick creates one job. Ticks
missed while nothing ran are not made up: the latest one runs once, and the next is
the first after now.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from chute.domain import SCHEDULER, InvalidValue, Job, JobEvent, Schedule
from chute.domain import validation as rules

log = logging.getLogger("chute.engine")

TICK_BATCH = 100  # due ticks taken in one transaction


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

    async def pause_schedule(self, name: str, paused: bool = True) -> Schedule:
        """Pause the schedule `name` (no tick creates a job), or resume it (`paused`
        False): its next run is then the first time its expression names after now, as
        after a replace. The rest of it stays; `ScheduleNotFound` when there is none."""
        calendar = self._schedules_calendar()
        now = self._clock.now()
        async with self._uow() as uow:
            schedule = await uow.schedules.get(name, for_update=True)
            if schedule is None:
                raise ScheduleNotFound(name)
            schedule.paused = paused
            schedule.next_run_at = (
                None if paused else calendar.next_after(schedule.cron, schedule.timezone, now)
            )
            schedule.updated_at = now
            await uow.schedules.update(schedule)
            await uow.commit()
        log.info("schedule.paused" if paused else "schedule.resumed", extra={"schedule": name})
        return schedule

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
        while len(await self._run_ticks(calendar)) == TICK_BATCH:
            pass  # a full batch: more may be due
        async with self._uow(read_only=True) as uow:
            return await uow.schedules.next_run()

    async def _run_ticks(self, calendar: Calendar) -> Sequence[Schedule]:
        """Take up to `TICK_BATCH` due ticks in one transaction: the schedules taken,
        each with its job created and its next run moved on."""
        made: list[tuple[Schedule, Job | None, list[FieldError]]] = []
        async with self._uow() as uow:
            now = self._clock.now()
            taken = await uow.schedules.take_due(now, TICK_BATCH)
            for schedule in taken:
                made.append((schedule, *self._tick(calendar, schedule, now)))
            jobs = [job for _, job, _ in made if job is not None]
            changes = [(job, b, a) for job in jobs for b, a in job.take_changes()]
            if jobs:
                await uow.jobs.add(jobs)
                await self._add_events(
                    uow,
                    [
                        (job, JobEvent(job.id, job.updated_at, b, a, SCHEDULER, job.schedule))
                        for job, b, a in changes
                    ],
                )
            await uow.schedules.save_runs(taken)
            await uow.commit()
        self._committed(changes)
        for schedule, made_job, problems in made:
            if made_job is None:
                # Stored before a rule changed: the tick passes, and the log says why.
                log.error(
                    "schedule.job_invalid",
                    extra={
                        "schedule": schedule.name,
                        "errors": [f"{p.loc}: {p.msg}" for p in problems],
                    },
                )
            else:
                log.info(
                    "schedule.ran",
                    extra={
                        "schedule": schedule.name,
                        "job_id": str(made_job.id),
                        "tick": schedule.last_run_at.isoformat() if schedule.last_run_at else None,
                    },
                )
        return taken

    def _tick(
        self, calendar: Calendar, schedule: Schedule, now: datetime
    ) -> tuple[Job | None, list[FieldError]]:
        """The job of `schedule`'s due tick (None, with the reasons, when its stored job
        breaks a rule now); moves the schedule's last and next runs on."""
        assert schedule.next_run_at is not None  # due
        tick = calendar.latest(schedule.cron, schedule.timezone, now)
        schedule.last_run_at = max(tick or schedule.next_run_at, schedule.next_run_at)
        schedule.next_run_at = calendar.next_after(schedule.cron, schedule.timezone, now)
        new = job_of_template(schedule.job)
        problems = new.problems()
        if problems:
            return None, problems
        job = self._new_job(new, now)
        job.schedule = schedule.name
        return job, []

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
