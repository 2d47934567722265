"""How the in-memory job repository filters and orders jobs: the twin of the SQL adapter's
`statements.py`, so that both answer every query alike."""

from __future__ import annotations

from datetime import datetime

from chute.application.queries import ClaimFilter, JobFilter, JobSort, Keyset
from chute.domain import Job, JobStatus
from chute.domain.validation import mime_matches


def matches(job: Job, f: JobFilter) -> bool:
    return (
        (not f.statuses or job.status in f.statuses)
        and (not f.source_types or job.source_type in f.source_types)
        and (not f.priorities or job.priority in f.priorities)
        and (not f.modes or job.mode in f.modes)
        and (f.mime_type is None or mime_matches(job.mime_type, f.mime_type))
        and (f.created_after is None or job.created_at >= f.created_after)
        and (f.created_before is None or job.created_at < f.created_before)
    )


def claimable(job: Job, f: ClaimFilter, now: datetime) -> bool:
    return (
        job.status is JobStatus.PENDING
        and (job.run_after is None or job.run_after <= now)
        and (not f.modes or job.mode in f.modes)
        and (not f.source_types or job.source_type in f.source_types)
        and (f.mime_type is None or mime_matches(job.mime_type, f.mime_type))
    )


def sort_key(job: Job, sort: JobSort) -> tuple[object, ...]:
    if sort.by_priority:
        return (job.priority.rank, job.created_at, job.id)
    return (job.created_at, job.id)


def keyset_key(after: Keyset, sort: JobSort) -> tuple[object, ...]:
    if sort.by_priority:
        assert after.priority is not None
        return (after.priority.rank, after.created_at, after.id)
    return (after.created_at, after.id)
