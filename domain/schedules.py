"""Schedules: a job made again at each time a cron expression names."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True, kw_only=True)
class Schedule:
    """A named cron expression in a time zone, and the job each of its ticks creates.

    `job` holds the fields of that job as JSON values (those of a create request).
    `next_run_at` is the next tick that will create a job (None while paused, or when
    the expression names no time to come); `last_run_at` the tick that created the
    last one. Ticks missed while nothing ran are not made up: the latest one runs once.
    """

    name: str
    cron: str
    timezone: str = "UTC"
    job: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    next_run_at: datetime | None = None
    last_run_at: datetime | None = None
    created_at: datetime
    updated_at: datetime

    def is_due(self, now: datetime) -> bool:
        return not self.paused and self.next_run_at is not None and self.next_run_at <= now
