"""The JSON shapes of `/api/v1/schedules`."""

from __future__ import annotations

from typing import Any

from chute.application import ScheduleSpec
from chute.domain import Schedule
from chute.domain import validation as rules
from chute.entrypoints.http.schemas.jobs import JobCreateRequest
from chute.entrypoints.http.values import Text, UtcTime
from pydantic import BaseModel, ConfigDict, Field, StrictBool


class ScheduleRequest(BaseModel):
    """A schedule: the job to create at each time a cron expression names."""

    model_config = ConfigDict(extra="forbid")

    cron: Text = Field(
        description="five fields: minute hour day-of-month month day-of-week, read as "
        "Debian's cron reads them (names, lists, ranges, steps; `L` and `#`)",
        examples=["*/5 * * * *"],
        json_schema_extra={"maxLength": rules.MAX_CRON_LENGTH},
    )
    timezone: Text = Field(
        "UTC",
        description="the IANA time zone the expression is read in, across its "
        "daylight-saving changes",
        examples=["Europe/Berlin"],
    )
    job: JobCreateRequest = Field(
        description="the job each tick creates: the fields of POST /api/v1/jobs but "
        "`run_after` (the job is due at its tick)"
    )
    paused: StrictBool = Field(False, description="true: no tick creates a job")

    def to_spec(self) -> ScheduleSpec:
        return ScheduleSpec(
            cron=self.cron, timezone=self.timezone, job=self.job.to_new_job(), paused=self.paused
        )


class ScheduleResponse(BaseModel):
    """A schedule, with its next and last runs."""

    name: str
    cron: str
    timezone: str
    job: dict[str, Any] = Field(description="the fields of the job each tick creates")
    paused: bool
    next_run_at: UtcTime | None = Field(
        description="the next tick that creates a job; null while paused"
    )
    last_run_at: UtcTime | None = Field(description="the tick that created the last job")

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleResponse:
        return cls(
            name=schedule.name,
            cron=schedule.cron,
            timezone=schedule.timezone,
            job=schedule.job,
            paused=schedule.paused,
            next_run_at=schedule.next_run_at,
            last_run_at=schedule.last_run_at,
        )


class ScheduleListResponse(BaseModel):
    """Every schedule, by name."""

    items: list[ScheduleResponse]
