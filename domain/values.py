"""The values a job is described by: its status and the edges between statuses, its
priority, its mode of detection and the kind of its source."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def is_held(self) -> bool:
        """True for the states in which a worker holds the job under a lease."""
        return self in (JobStatus.RUNNING, JobStatus.CANCELLING)


S = JobStatus
# Every edge of the status diagram (docs/http-api.md); anything else is refused.
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.PENDING: frozenset({S.RUNNING, S.CANCELLED}),
    S.RUNNING: frozenset({S.COMPLETED, S.PENDING, S.FAILED, S.CANCELLING}),
    S.CANCELLING: frozenset({S.CANCELLED, S.COMPLETED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
}


class Priority(StrEnum):
    """How urgent a job is; jobs are claimed highest first."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return _BY_RANK[rank]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Priority):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {p: i for i, p in enumerate(Priority)}
_BY_RANK = {i: p for p, i in _RANKS.items()}


class Mode(StrEnum):
    """How thoroughly content is examined."""

    AUTO = "auto"
    FAST = "fast"
    ACCURATE = "accurate"


class SourceType(StrEnum):
    UPLOAD = "upload"
    URL = "url"
    S3 = "s3"
