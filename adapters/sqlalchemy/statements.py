"""The SELECT statements of the job repository: filters, sorts, keysets, claim, rescue and
purge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chute.adapters.sqlalchemy.tables import HELD, HELD_ROWS, jobs
from chute.application.queries import ClaimFilter, JobFilter, JobSort, Keyset
from chute.domain import JobStatus, Priority
from chute.domain.metadata import has_json_scalar, json_scalar
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql

FINISHED = (JobStatus.COMPLETED.value, JobStatus.FAILED.value)


def claimable(filt: ClaimFilter, limit: int, dialect: str) -> Select[Any]:
    """Pending jobs due by the `now` parameter that `filt` accepts, in the order they
    are claimed (the same statement for every `now`, so that it is built once)."""
    c = jobs.c
    # The order of ix_jobs_status_priority_desc_created_at_id, so that no sort runs.
    order = [c.priority.desc(), c.created_at, c.id]
    queues = filt.queues
    one_queue = len(queues) == 1 and dialect == "postgresql"
    if one_queue:
        # Of one queue, by ix_jobs_queue_status_priority_desc_created_at_id instead, led
        # by the queue. PostgreSQL would rather walk the status index and pass over
        # every older job of the other queues (its statistics cannot foresee that the
        # wanted ones come last: a claim of `other` read 3,000 jobs of a backlog in
        # `q`). Ordered by the queue first, only the queue index gives the order; and
        # as `= ANY(array)`, the queue is not a constant that the planner drops from the
        # order (it would for `queue = 'other'`).
        names = cast(postgresql.array(sorted(queues)), postgresql.ARRAY(Text))
        order.insert(0, c.queue)
        queues = frozenset()
    same = JobFilter(
        modes=filt.modes,
        source_types=filt.source_types,
        mime_type=filt.mime_type,
        queues=queues,
    )
    stmt = filtered(select(jobs), same, dialect)
    if one_queue:
        stmt = stmt.where(c.queue == func.any(names))
    if filt.skip_queues:
        stmt = stmt.where(c.queue.not_in(sorted(filt.skip_queues)))
    return (
        stmt.where(c.status == JobStatus.PENDING.value)
        .where(or_(c.run_after.is_(None), c.run_after <= bindparam("now")))
        .order_by(*order)
        .limit(limit)
    )


def queue_names() -> Select[Any]:
    """Every queue a job is in, by a loose index scan: one seek of the queue index per
    name (a DISTINCT would read an index entry per job)."""
    c = jobs.c
    found = select(func.min(c.queue).label("name")).cte("found", recursive=True)
    following = select(func.min(c.queue)).where(c.queue > found.c.name).scalar_subquery()
    found = found.union_all(select(following).where(found.c.name.is_not(None)))
    return select(found.c.name).where(found.c.name.is_not(None))


LIVE = sorted({JobStatus.PENDING.value, *HELD})


def queue_counts(
    now: datetime, since: datetime, queues: Sequence[str]
) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """Three statements for the views of `queues`, none of which reads a job's row:

    - (queue, status, count) of their pending and held jobs, from the queue index;
    - (queue, count) of their pending jobs not due yet, from the small index of the
      scheduled ones (pending jobs with a `run_after`);
    - (queue, status, count) of those that finished since `since`, found by
      ix_jobs_status_updated_at (a finished job's updated_at is at least its
      finished_at).
    """
    c = jobs.c
    live = (
        select(c.queue, c.status, func.count())
        .where(c.queue.in_(queues), c.status.in_(LIVE))
        .group_by(c.queue, c.status)
    )
    scheduled = (
        select(c.queue, func.count())
        .where(c.queue.in_(queues), c.status == JobStatus.PENDING.value)
        .where(c.run_after.is_not(None), c.run_after > now)
        .group_by(c.queue)
    )
    finished = (
        select(c.queue, c.status, func.count())
        .where(c.queue.in_(queues), c.status.in_(FINISHED))
        .where(c.updated_at >= since, c.finished_at >= since)
        .group_by(c.queue, c.status)
    )
    return live, scheduled, finished


def oldest_ready(now: datetime, queues: Sequence[str]) -> Select[Any]:
    """(queue, created_at) of the oldest pending job due by `now` of each priority of
    each of `queues`: one seek of the claim index per queue and priority (its order is
    priority, then age), reading rows only to pass over jobs not due yet."""
    c = jobs.c
    ready = or_(c.run_after.is_(None), c.run_after <= now)
    firsts = [
        select(c.queue, c.created_at)
        .where(c.queue == queue, c.status == JobStatus.PENDING.value, c.priority == p.rank)
        .where(ready)
        .order_by(c.created_at)
        .limit(1)
        .subquery()
        for queue in queues
        for p in Priority
    ]
    return union_all(*(select(first) for first in firsts))  # type: ignore[return-value]


def finished_per_minute(since: datetime, dialect: str) -> Select[Any]:
    """Rows of (minute, status, count): the jobs completed or failed at or after `since`
    by the UTC minute of their `finished_at`, written `YYYY-MM-DD HH:MM` on both
    dialects. One range read of ix_jobs_status_updated_at per status, as the queue
    counts' (a finished job's updated_at is at least its finished_at)."""
    c = jobs.c
    minute: ColumnElement[str]
    if dialect == "postgresql":
        utc = func.timezone("UTC", c.finished_at)  # timestamptz -> UTC wall time
        minute = func.to_char(utc, "YYYY-MM-DD HH24:MI", type_=Text)
    else:  # SQLite keeps UTC text as SQLITE_DATETIME_FORMAT: its first 16 characters
        minute = func.substr(c.finished_at, 1, 16, type_=Text)
    return (
        select(minute.label("minute"), c.status, func.count())
        .where(c.status.in_(FINISHED), c.updated_at >= since, c.finished_at >= since)
        .group_by(literal_column("1"), c.status)  # by position: `minute` has parameters
    )


def expired(now: datetime, limit: int) -> Select[Any]:
    """Held jobs whose lease ended before `now`, the longest expired first."""
    c = jobs.c
    return (
        select(jobs)
        .where(HELD_ROWS, c.lease_expires_at <= now)
        .order_by(c.lease_expires_at, c.id)
        .limit(limit)
    )


def purgeable(statuses: frozenset[JobStatus], updated_before: datetime, limit: int) -> Select[Any]:
    """Jobs in `statuses` last updated before `updated_before`, in no particular order
    (an order would sort every match; ix_jobs_status_updated_at finds them)."""
    c = jobs.c
    return (
        select(jobs)
        .where(c.status.in_(sorted(s.value for s in statuses)), c.updated_at < updated_before)
        .limit(limit)
    )


def filtered(stmt: Select[Any], f: JobFilter, dialect: str) -> Select[Any]:
    c = jobs.c
    conditions: list[ColumnElement[bool]] = []
    if f.statuses:
        conditions.append(c.status.in_(sorted(s.value for s in f.statuses)))
    if f.source_types:
        conditions.append(c.source_type.in_(sorted(s.value for s in f.source_types)))
    if f.priorities:
        conditions.append(c.priority.in_(sorted(p.rank for p in f.priorities)))
    if f.modes:
        conditions.append(c.mode.in_(sorted(m.value for m in f.modes)))
    if f.mime_type is not None:
        conditions.append(_mime_matches(f.mime_type, dialect))
    if f.created_after is not None:
        conditions.append(c.created_at >= f.created_after)
    if f.created_before is not None:
        conditions.append(c.created_at < f.created_before)
    if f.queues:
        conditions.append(c.queue.in_(sorted(f.queues)))
    for key, text in f.metadata:
        conditions.append(_metadata_matches(key, text, dialect))
    return stmt.where(*conditions)


def _metadata_matches(key: str, text: str, dialect: str) -> ColumnElement[bool]:
    """`chute.domain.metadata.value_matches` of the value at `key`, in SQL."""
    if dialect == "postgresql":
        return _jsonb_matches(key, text)
    # SQLite: the top-level members of the object, by json_each, so that any key (dots,
    # quotes) is compared as it is, not parsed as a path. `type` is the JSON type, and
    # 'true', 'false', 'null' are also their JSON text; a number's text is its atom's.
    member = func.json_each(jobs.c.metadata).table_valued("key", "type", "atom").alias("member")
    scalar = or_(
        and_(member.c.type == "text", member.c.atom == text),
        and_(member.c.type.in_(("integer", "real")), cast(member.c.atom, Text) == text),
        and_(member.c.type.in_(("true", "false", "null")), member.c.type == text),
    )
    found: Select[Any] = select(literal_column("1")).select_from(member)
    return found.where(member.c.key == key, scalar).exists()


def _jsonb_matches(key: str, text: str) -> ColumnElement[bool]:
    """Containment (`@>`), which ix_jobs_metadata (GIN, jsonb_path_ops) answers, of the
    string and, when `text` is the JSON text of one, of the number, boolean or null.
    A number is also compared by its text (`->>`), since jsonb finds 7 and 7.0 equal."""
    column = jobs.c.metadata
    candidates: list[ColumnElement[bool]] = [column.op("@>")(_jsonb({key: text}))]
    scalar = json_scalar(text)
    if has_json_scalar(text):
        contains: ColumnElement[bool] = column.op("@>")(_jsonb({key: scalar}))
        if isinstance(scalar, int | float) and not isinstance(scalar, bool):
            contains = and_(contains, column.op("->>")(literal(key, Text)) == text)
        candidates.append(contains)
    return or_(*candidates)


def _jsonb(value: dict[str, object]) -> ColumnElement[Any]:
    return cast(literal(json.dumps(value), Text), postgresql.JSONB)


def _mime_matches(pattern: str, dialect: str) -> ColumnElement[bool]:
    column = jobs.c.mime_type
    if not pattern.endswith("/*"):
        return column == pattern
    prefix = pattern[:-1]  # "image/"
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    like = column.like(escaped + "%", escape="\\")
    if dialect != "sqlite":
        return like
    # SQLite's LIKE ignores ASCII case, unlike the in-memory adapter and PostgreSQL;
    # the range (in binary order, '0' follows '/') restores exactness and lets SQLite
    # walk the mime_type index.
    return and_(like, column >= prefix, column < prefix[:-1] + "0")


def list_order(sort: JobSort, of: FromClause = jobs) -> list[ColumnElement[Any]]:
    """The ORDER BY of a list in `sort`, on the columns of `jobs` or of a subquery of it."""
    columns = [of.c.priority] if sort.by_priority else []
    columns += [of.c.created_at, of.c.id]
    return [col.desc() if sort.descending else col.asc() for col in columns]


def after(keyset: Keyset, sort: JobSort) -> ColumnElement[bool]:
    # The row-value form, `(a, b) < (:a, :b)`: SQLite seeks the index only in this form.
    columns = [jobs.c.created_at, jobs.c.id]
    values: list[Any] = [keyset.created_at, keyset.id]
    if sort.by_priority:
        assert keyset.priority is not None
        columns.insert(0, jobs.c.priority)
        values.insert(0, keyset.priority.rank)
    here = tuple_(*columns)
    mark = tuple_(*(literal(v, col.type) for v, col in zip(values, columns, strict=True)))
    return here < mark if sort.descending else here > mark
