"""The history of a job: one event per status change, creation included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from chute.domain.values import JobStatus

CLIENT = "client"
RESCUER = "rescuer"
SCHEDULER = "scheduler"  # a schedule's tick made the job (the event's detail names it)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job went from one status to another (`from_status` None when it was created)."""

    job_id: UUID
    at: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    actor: str  # "client", "rescuer", "scheduler", or the id of the worker that reported
    detail: str | None = None
