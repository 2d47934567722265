"""The engine's side of telemetry: `NoTelemetry`, the default, and what the status
changes of one committed unit of work mean for the `Telemetry` port.

The engine turns each status change into the port's facts (created, claimed, attempt
ended, finished) here, in one place, so that the adapters count facts and never read
the job life cycle themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext

from chute.application.ports import Telemetry
from chute.domain import Job, JobStatus

Change = tuple[Job, JobStatus | None, JobStatus]
"""A job and one of its status changes (None before: the job was created)."""

_NO_SPAN: AbstractContextManager[None] = nullcontext()


class NoTelemetry(Telemetry):
    """Counts nothing and traces nothing, at the cost of a call."""

    def jobs_created(self, queue: str, source_type: str, count: int) -> None:
        pass

    def job_claimed(self, queue: str, waited_seconds: float | None) -> None:
        pass

    def attempt_ended(self, queue: str, ran_seconds: float) -> None:
        pass

    def job_finished(self, queue: str, status: str) -> None:
        pass

    def webhook_delivered(self, result: str) -> None:
        pass

    def span(self, name: str) -> AbstractContextManager[None]:
        return _NO_SPAN  # reentrant and reusable: one for every call

    def trace_context(self) -> str | None:
        return None

    def job_span(self, job: Job) -> AbstractContextManager[None]:
        return _NO_SPAN


def report_changes(telemetry: Telemetry, changes: Sequence[Change]) -> None:
    """Tell `telemetry` what the committed `changes` were: creations (counted by queue
    and source type, one call for a batch), claims with the wait of first ones, the
    ends of attempts with their run time, and final statuses."""
    created: dict[tuple[str, str], int] = {}
    for job, before, after in changes:
        if before is None:
            key = (job.queue, job.source_type.value)
            created[key] = created.get(key, 0) + 1
            continue
        if after is JobStatus.RUNNING:
            waited = None
            if job.attempts == 1 and job.started_at is not None:
                waited = (job.started_at - job.created_at).total_seconds()
            telemetry.job_claimed(job.queue, waited)
        elif before.is_held and not after.is_held and job.started_at is not None:
            ended = job.finished_at or job.updated_at
            telemetry.attempt_ended(job.queue, max((ended - job.started_at).total_seconds(), 0))
        if after.is_terminal:
            telemetry.job_finished(job.queue, after.value)
    for (queue, source_type), count in created.items():
        telemetry.jobs_created(queue, source_type, count)
