"""The root of chute's error hierarchy and the errors the domain raises."""

from __future__ import annotations

from uuid import UUID

from chute.domain.values import JobStatus


class ChuteError(Exception):
    """Base of every error chute raises on purpose."""


class InvalidTransition(ChuteError):
    """A job was asked to move to a status its current status cannot reach."""

    def __init__(self, job_id: UUID, current: JobStatus, target: JobStatus) -> None:
        self.job_id, self.current, self.target = job_id, current, target
        super().__init__(f"Job {job_id} is {current}; it cannot become {target}.")


class LeaseNotHeld(ChuteError):
    """A worker reported on a job whose lease it does not hold (any more)."""

    def __init__(self, job_id: UUID, worker_id: str) -> None:
        self.job_id, self.worker_id = job_id, worker_id
        super().__init__(f"Worker {worker_id!r} does not hold a live lease on job {job_id}.")


class InvalidValue(ChuteError, ValueError):
    """A value of a job's specification breaks a rule (bad URI, metadata too large, ...)."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(message)
