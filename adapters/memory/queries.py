"""How the in-memory job repository claims, counts and orders jobs: the twin of the SQL
adapter's `statements.py`, so that both answer every query alike. Whether a job matches
a list filter is `chute.application.queries.job_matches`, which webhook filters use too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chute.application.queries import ClaimFilter, JobSort, Keyset, MinuteCounts, QueueCounts
from chute.domain import Job, JobStatus
from chute.domain.validation import mime_matches


def claimable(job: Job, f: ClaimFilter, now: datetime) -> bool:
    return (
        job.status is JobStatus.PENDING
        and (job.run_after is None or job.run_after <= now)
        and (not f.modes or job.mode in f.modes)
        and (not f.source_types or job.source_type in f.source_types)
        and (f.mime_type is None or mime_matches(job.mime_type, f.mime_type))
        and (not f.queues or job.queue in f.queues)
        and job.queue not in f.skip_queues
    )


def queue_counts(jobs: list[Job], now: datetime, since: datetime) -> dict[str, QueueCounts]:
    """The counts of each queue with a job in a counted state, as the SQL adapter's."""
    found: dict[str, dict[str, Any]] = {}
    for job in jobs:
        key = _counted_as(job, now, since)
        if key is None:
            continue
        counts = found.setdefault(job.queue, {})
        counts[key] = counts.get(key, 0) + 1
        if key == "pending":
            oldest = counts.get("oldest_pending_at")
            counts["oldest_pending_at"] = min(oldest or job.created_at, job.created_at)
    return {name: QueueCounts(**counts) for name, counts in found.items()}


def finished_per_minute(jobs: list[Job], since: datetime) -> list[MinuteCounts]:
    """The completed and failed jobs since `since` by the UTC minute they finished in,
    as the SQL adapter's."""
    found: dict[datetime, dict[str, int]] = {}
    for job in jobs:
        if job.status not in _FINISHED or job.finished_at is None or job.finished_at < since:
            continue
        minute = job.finished_at.astimezone(UTC).replace(second=0, microsecond=0)
        counts = found.setdefault(minute, {})
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return [MinuteCounts(minute, **found[minute]) for minute in sorted(found)]


_FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED)


def _counted_as(job: Job, now: datetime, since: datetime) -> str | None:
    s = job.status
    if s is JobStatus.PENDING:
        return "pending" if job.run_after is None or job.run_after <= now else "scheduled"
    if s in (JobStatus.RUNNING, JobStatus.CANCELLING):
        return s.value
    recent = job.finished_at is not None and job.finished_at >= since
    if recent and s in (JobStatus.COMPLETED, JobStatus.FAILED):
        return f"{s.value}_last_hour"
    return None


def sort_key(job: Job, sort: JobSort) -> tuple[object, ...]:
    if sort.by_priority:
        return (job.priority.rank, job.created_at, job.id)
    return (job.created_at, job.id)


def keyset_key(after: Keyset, sort: JobSort) -> tuple[object, ...]:
    if sort.by_priority:
        assert after.priority is not None
        return (after.priority.rank, after.created_at, after.id)
    return (after.created_at, after.id)
