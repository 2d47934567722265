"""How jobs are listed: filters, sorts, pages, and the opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from chute.application.errors import InvalidCursor
from chute.domain import Job, JobEvent, JobStatus, Mode, Priority, SourceType
from chute.domain.metadata import metadata_matches
from chute.domain.validation import mime_matches


class JobSort(StrEnum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    PRIORITY_DESC = "-priority"
    PRIORITY_ASC = "priority"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def by_priority(self) -> bool:
        return self in (JobSort.PRIORITY_DESC, JobSort.PRIORITY_ASC)


@dataclass(frozen=True, kw_only=True)
class JobFilter:
    """Which jobs a list shows; empty sets mean 'any'."""

    statuses: frozenset[JobStatus] = frozenset()
    source_types: frozenset[SourceType] = frozenset()
    priorities: frozenset[Priority] = frozenset()
    modes: frozenset[Mode] = frozenset()
    mime_type: str | None = None  # exact, or "type/*"
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    queues: frozenset[str] = frozenset()
    # (key, text) pairs sorted by key, as `check_metadata_filters` returns them: see
    # `chute.domain.metadata` for what matches.
    metadata: tuple[tuple[str, str], ...] = ()

    def fingerprint(self) -> str:
        """A short digest that tells whether a cursor was made for these filters."""
        parts = [
            sorted(self.statuses),
            sorted(self.source_types),
            sorted(self.priorities),
            sorted(self.modes),
            self.mime_type,
            _utc(self.created_after),
            _utc(self.created_before),
        ]
        if self.queues:  # only when set, so that cursors made before queues stay valid
            parts.append(sorted(self.queues))
        if self.metadata:  # likewise for metadata filters
            parts.append({"metadata": sorted(self.metadata)})
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def job_matches(job: Job, f: JobFilter) -> bool:
    """Whether `job` is one that `f` selects: the rule of every list, bulk action and
    webhook filter, which the SQL adapter's `statements.filtered` spells in SQL."""
    return (
        (not f.statuses or job.status in f.statuses)
        and (not f.source_types or job.source_type in f.source_types)
        and (not f.priorities or job.priority in f.priorities)
        and (not f.modes or job.mode in f.modes)
        and (f.mime_type is None or mime_matches(job.mime_type, f.mime_type))
        and (f.created_after is None or job.created_at >= f.created_after)
        and (f.created_before is None or job.created_at < f.created_before)
        and (not f.queues or job.queue in f.queues)
        and (not f.metadata or metadata_matches(job.metadata, f.metadata))
    )


def filter_to_json(f: JobFilter) -> dict[str, Any]:
    """`f` as the JSON filter object of the bulk actions (only the fields it sets), so
    that a stored filter reads back as it was given."""
    found: dict[str, Any] = {
        "status": sorted(f.statuses),
        "source_type": sorted(f.source_types),
        "priority": sorted(f.priorities),
        "mode": sorted(f.modes),
        "mime_type": f.mime_type,
        "created_after": rfc3339(f.created_after) if f.created_after else None,
        "created_before": rfc3339(f.created_before) if f.created_before else None,
        "queue": sorted(f.queues),
        "metadata": dict(f.metadata),
    }
    return {key: value for key, value in found.items() if value}


def filter_from_json(data: dict[str, Any]) -> JobFilter:
    """The filter `filter_to_json` wrote."""

    def moment(key: str) -> datetime | None:
        value = data.get(key)
        return datetime.fromisoformat(value) if value else None

    return JobFilter(
        statuses=frozenset(JobStatus(v) for v in data.get("status", ())),
        source_types=frozenset(SourceType(v) for v in data.get("source_type", ())),
        priorities=frozenset(Priority(v) for v in data.get("priority", ())),
        modes=frozenset(Mode(v) for v in data.get("mode", ())),
        mime_type=data.get("mime_type"),
        created_after=moment("created_after"),
        created_before=moment("created_before"),
        queues=frozenset(data.get("queue", ())),
        metadata=tuple(sorted(data.get("metadata", {}).items())),
    )


def rfc3339(moment: datetime) -> str:
    """The instant as the API writes times: UTC, six digits of microseconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc(moment: datetime | None) -> str | None:
    """The instant in one spelling, so that equal times with other offsets match."""
    return moment.astimezone(UTC).isoformat() if moment else None


@dataclass(frozen=True, kw_only=True)
class ClaimFilter:
    """Which pending jobs a worker takes; empty sets mean 'any'."""

    modes: frozenset[Mode] = frozenset()
    source_types: frozenset[SourceType] = frozenset()
    mime_type: str | None = None  # exact, or "type/*"
    queues: frozenset[str] = frozenset()  # only jobs of these queues
    skip_queues: frozenset[str] = frozenset()  # never jobs of these (paused or limited ones)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """What is in one queue now, and what it finished in the last hour."""

    pending: int = 0  # ready now
    scheduled: int = 0  # pending, waiting for their run_after
    running: int = 0
    cancelling: int = 0
    completed_last_hour: int = 0
    failed_last_hour: int = 0
    oldest_pending_at: datetime | None = None  # the creation of the oldest job ready now


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    """The jobs that finished in one minute (UTC), which starts at `minute`."""

    minute: datetime
    completed: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class QueueView:
    """A queue as the use cases show it: its settings (defaults when it has none) and
    its counts."""

    name: str
    paused: bool
    concurrency_limit: int | None
    counts: QueueCounts


@dataclass(frozen=True, slots=True)
class Keyset:
    """The sort key of the last row of a page; the next page starts after it."""

    created_at: datetime
    id: UUID
    priority: Priority | None = None

    @classmethod
    def of(cls, job: Job, sort: JobSort) -> Keyset:
        return cls(job.created_at, job.id, job.priority if sort.by_priority else None)


@dataclass(frozen=True, kw_only=True)
class JobQuery:
    """One page of jobs: by `after` (keyset) when given, else by `offset`."""

    filter: JobFilter = field(default_factory=JobFilter)
    sort: JobSort = JobSort.NEWEST
    limit: int = 50
    offset: int = 0
    after: Keyset | None = None


@dataclass(frozen=True, slots=True)
class JobPage:
    """A page of jobs. `total` counts the matching jobs up to the engine's count cap:
    `total_exact` is False when more match (`total` is then the cap); both are None
    when no count was asked for."""

    items: list[Job]
    total: int | None
    next_cursor: str | None
    total_exact: bool | None = None


def encode_cursor(keyset: Keyset, sort: JobSort, filt: JobFilter) -> str:
    payload = {
        "s": sort.value,
        "f": filt.fingerprint(),
        "c": keyset.created_at.isoformat(),
        "i": str(keyset.id),
        "p": keyset.priority.value if keyset.priority else None,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, sort: JobSort, filt: JobFilter) -> Keyset:
    """Return the keyset of `token`; raise `InvalidCursor` unless it fits this list."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        made_for = (data["s"], data["f"])
        keyset = Keyset(
            datetime.fromisoformat(data["c"]),
            UUID(data["i"]),
            Priority(data["p"]) if data["p"] is not None else None,
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidCursor("it does not decode") from None
    if made_for != (sort.value, filt.fingerprint()):
        raise InvalidCursor("it was made for another sort or other filters")
    if keyset.created_at.tzinfo is None or (keyset.priority is None) == sort.by_priority:
        raise InvalidCursor("it does not decode")
    return keyset


@dataclass(frozen=True, slots=True)
class FedEvent:
    """An event as the live feed reads it: its id (what a stream sends, and a client
    resumes from) and its place in the feed's order (`position`: events come in
    position order, which is commit order; ids alone are not)."""

    id: int
    position: tuple[int, int]
    event: JobEvent
