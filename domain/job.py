"""The job: a piece of content moving through the pipeline, and its transition rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from chute.domain.detection import DetectionResult
from chute.domain.errors import InvalidTransition, LeaseNotHeld
from chute.domain.queues import DEFAULT_QUEUE
from chute.domain.values import TRANSITIONS, JobStatus, Mode, Priority, SourceType

S = JobStatus


@dataclass(eq=False, slots=True, kw_only=True)
class Job:
    """A unit of work on one piece of content, with the rules of its life cycle.

    Every method that changes the status checks the edge against `TRANSITIONS` and
    raises `InvalidTransition` without touching the job when it is not allowed.
    """

    id: UUID
    source_type: SourceType
    source_uri: str
    created_at: datetime
    updated_at: datetime
    status: JobStatus = JobStatus.PENDING
    file_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    priority: Priority = Priority.NORMAL
    mode: Mode = Mode.AUTO
    metadata: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    max_attempts: int = 3
    queue: str = DEFAULT_QUEUE
    schedule: str | None = None  # the schedule that made the job, if one did
    last_error: str | None = None
    worker_id: str | None = None
    lease_seconds: int | None = None
    lease_expires_at: datetime | None = None
    run_after: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: int | None = None
    progress_message: str | None = None
    result: dict[str, Any] | None = None
    content_key: str | None = None  # where the file store keeps its content, if it has any
    # The W3C traceparent of the request that created the job, so that the worker's span
    # continues its trace; None when nothing was traced. Not part of the job's JSON.
    trace_context: str | None = None
    detection: DetectionResult | None = None  # loaded beside the job, not part of its row
    changes: list[tuple[JobStatus | None, JobStatus]] = field(default_factory=list, repr=False)
    """Status changes not yet recorded as events; `take_changes()` drains them."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- client actions ---------------------------------------------------------------

    def cancel(self, now: datetime) -> bool:
        """Cancel the job; returns False when it was already cancelled or cancelling."""
        if self.status in (S.CANCELLED, S.CANCELLING):
            return False
        self._move(S.CANCELLING if self.status is S.RUNNING else S.CANCELLED, now)
        return True

    def retry(self, now: datetime) -> None:
        """Put a failed or cancelled job back in the queue, allowing one more attempt."""
        if not self.status.is_terminal or self.status is S.COMPLETED:
            raise InvalidTransition(self.id, self.status, S.PENDING)
        self._move(S.PENDING, now)
        self.max_attempts = max(self.max_attempts, self.attempts + 1)
        self.run_after = None
        self.finished_at = None

    # -- worker actions ---------------------------------------------------------------

    def claim(self, worker_id: str, lease_seconds: int, now: datetime) -> None:
        """Hand the job to `worker_id` under a lease of `lease_seconds`."""
        self._move(S.RUNNING, now)
        self.attempts += 1
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.lease_expires_at = now + timedelta(seconds=lease_seconds)
        self.started_at = now
        self.run_after = None
        self.progress = None
        self.progress_message = None

    def heartbeat(
        self,
        worker_id: str,
        now: datetime,
        *,
        lease_seconds: int | None = None,
        progress: int | None = None,
        progress_message: str | None = None,
    ) -> None:
        """Extend the holder's lease (by its own length unless told) and note progress."""
        self.check_holder(worker_id, now)
        extend = lease_seconds or self.lease_seconds or 0  # the claimed length is kept
        self.lease_expires_at = now + timedelta(seconds=extend)
        if progress is not None:
            self.progress = progress
        if progress_message is not None:
            self.progress_message = progress_message
        self.updated_at = now

    def release(self, now: datetime) -> None:
        """Give the job back unfinished (its worker is stopping): the attempt does not count."""
        if self.status is S.CANCELLING:
            self._move(S.CANCELLED, now)
            return
        self._move(S.PENDING, now)
        self.attempts = max(0, self.attempts - 1)
        self.run_after = None

    def check_holder(self, worker_id: str, now: datetime) -> None:
        """Raise `LeaseNotHeld` unless `worker_id` holds a lease that has not ended."""
        live = self.lease_expires_at is not None and self.lease_expires_at > now
        if not (self.status.is_held and self.worker_id == worker_id and live):
            raise LeaseNotHeld(self.id, worker_id)

    def complete(self, now: datetime, result: dict[str, Any] | None = None) -> None:
        """Record the work as done, also when a cancel arrived meanwhile."""
        self._move(S.COMPLETED, now)
        self.result = result

    def fail(self, now: datetime, error: str, *, retryable: bool, backoff: timedelta) -> None:
        """Record a failed attempt: back to pending after `backoff`, or failed for good."""
        self.last_error = error
        if self.status is S.CANCELLING:
            self._move(S.CANCELLED, now)
        elif retryable and self.attempts < self.max_attempts:
            self._move(S.PENDING, now)
            self.run_after = now + backoff
        else:
            self._move(S.FAILED, now)

    def expire_lease(self, now: datetime) -> None:
        """Take the job back from a worker whose lease ended."""
        if self.status is S.CANCELLING:
            self._move(S.CANCELLED, now)
        elif self.attempts < self.max_attempts:
            self._move(S.PENDING, now)
        else:
            self.last_error = self.last_error or "lease expired"
            self._move(S.FAILED, now)

    # -- the one place where the status changes ------------------------------------------

    def move_to(self, target: JobStatus, now: datetime) -> None:
        """Follow one edge of the diagram, with no other bookkeeping than the edge's own."""
        self._move(target, now)

    def take_changes(self) -> list[tuple[JobStatus | None, JobStatus]]:
        """The status changes since the last call, oldest first."""
        changes, self.changes = self.changes, []
        return changes

    def _move(self, target: JobStatus, now: datetime) -> None:
        if target not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.id, self.status, target)
        self.changes.append((self.status, target))
        self.status = target
        self.updated_at = now
        if not target.is_held:
            self.worker_id = None
            self.lease_expires_at = None
        if target.is_terminal:
            self.finished_at = now


def backoff(attempts: int, *, base: float, cap: float, jitter: float) -> timedelta:
    """The wait after failed attempt number `attempts`: `jitter` * min(cap, base * 2^(n-1)).

    `jitter` is drawn from uniform(0.5, 1) by the caller, so that this stays pure.
    """
    exponent = max(attempts - 1, 0)
    raw = cap if exponent >= 64 else min(cap, base * 2**exponent)
    return timedelta(seconds=jitter * raw)
