"""The storage ports on SQLAlchemy Core: rows map to domain objects by explicit functions.

They behave exactly as the in-memory adapters in `chute.adapters.memory` do; one
contract suite (tests/integration) holds both to it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

from chute.adapters.sqlalchemy.engine import database_errors
from chute.adapters.sqlalchemy.tables import detection_results, idempotency_keys, jobs
from chute.application.errors import IdempotencyConflict
from chute.application.ports import (
    DetectionResultRepository,
    IdempotencyKeyRepository,
    IdempotencyRecord,
    JobRepository,
)
from chute.application.queries import JobFilter, JobQuery, JobSort, Keyset
from chute.domain import DetectionResult, Job, JobStatus, Mode, Priority, SourceType
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    RowMapping,
    Select,
    and_,
    delete,
    exc,
    func,
    insert,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

IN_CHUNK = 500  # ids per IN list, well under every driver's limit on parameters


class _SqlRepository:
    """What every repository shares: the connection of its unit of work."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def _dialect(self) -> str:
        return self._conn.dialect.name

    async def _execute(self, stmt: Executable, params: Any = None) -> CursorResult[Any]:
        with database_errors():
            return await self._conn.execute(stmt, params)


class SqlJobRepository(_SqlRepository, JobRepository):
    """Jobs in the `jobs` table."""

    async def add(self, jobs_: Sequence[Job]) -> None:
        if not jobs_:
            return
        try:
            await self._execute(insert(jobs), [_to_row(job) for job in jobs_])
        except exc.IntegrityError as e:
            raise ValueError(f"jobs not added (does an id exist already?): {e.orig}") from e

    async def get(self, job_id: UUID, *, for_update: bool = False) -> Job | None:
        stmt = select(jobs).where(jobs.c.id == job_id)
        if for_update and self._dialect == "postgresql":
            # SQLite has no row locks: its write transactions hold the whole file.
            stmt = stmt.with_for_update()
        row = (await self._execute(stmt)).mappings().first()
        return _to_job(row) if row else None

    async def get_many(self, job_ids: Sequence[UUID]) -> list[Job]:
        rows: dict[UUID, RowMapping] = {}
        for chunk in _chunks(list(dict.fromkeys(job_ids))):
            result = await self._execute(select(jobs).where(jobs.c.id.in_(chunk)))
            rows.update((row["id"], row) for row in result.mappings())
        return [_to_job(rows[job_id]) for job_id in job_ids if job_id in rows]

    async def update(self, job: Job) -> None:
        row = _to_row(job)
        del row["id"]
        result = await self._execute(update(jobs).where(jobs.c.id == job.id).values(row))
        if result.rowcount == 0:
            raise ValueError(f"job {job.id} does not exist")

    async def find(self, query: JobQuery) -> list[Job]:
        stmt = _filtered(select(jobs), query.filter, self._dialect)
        stmt = stmt.order_by(*_order(query.sort)).limit(query.limit)
        if query.after is not None:
            stmt = stmt.where(_after(query.after, query.sort))
        elif query.offset:
            stmt = stmt.offset(query.offset)
        return [_to_job(row) for row in (await self._execute(stmt)).mappings()]

    async def count(self, filt: JobFilter) -> int:
        stmt = _filtered(select(func.count()).select_from(jobs), filt, self._dialect)
        return int((await self._execute(stmt)).scalar_one())


class SqlDetectionResultRepository(_SqlRepository, DetectionResultRepository):
    """Detection results in the `detection_results` table, one per job."""

    async def add(self, job_id: UUID, result: DetectionResult) -> None:
        table = detection_results
        await self._execute(delete(table).where(table.c.job_id == job_id))
        await self._execute(insert(table).values(_detection_row(job_id, result)))

    async def get_many(self, job_ids: Sequence[UUID]) -> dict[UUID, DetectionResult]:
        found: dict[UUID, DetectionResult] = {}
        for chunk in _chunks(list(dict.fromkeys(job_ids))):
            stmt = select(detection_results).where(detection_results.c.job_id.in_(chunk))
            rows = (await self._execute(stmt)).mappings()
            found.update((row["job_id"], _to_detection(row)) for row in rows)
        return {job_id: found[job_id] for job_id in job_ids if job_id in found}


class SqlIdempotencyKeyRepository(_SqlRepository, IdempotencyKeyRepository):
    """Idempotency keys in the `idempotency_keys` table; (scope, key) is its primary key."""

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        stmt = select(idempotency_keys).where(_key_is(scope, key))
        row = (await self._execute(stmt)).mappings().first()
        if row is None:
            return None
        return IdempotencyRecord(
            scope=row["scope"],
            key=row["key"],
            fingerprint=row["fingerprint"],
            job_ids=tuple(UUID(job_id) for job_id in row["job_ids"]),
            created_at=row["created_at"],
        )

    async def add(self, record: IdempotencyRecord) -> None:
        row = {
            "scope": record.scope,
            "key": record.key,
            "fingerprint": record.fingerprint,
            "job_ids": [str(job_id) for job_id in record.job_ids],
            "created_at": record.created_at,
        }
        try:
            await self._execute(insert(idempotency_keys).values(row))
        except exc.IntegrityError as e:
            # The primary key is the only constraint that can fail here: another
            # transaction stored the key (on PostgreSQL, after waiting for it to commit).
            raise IdempotencyConflict() from e

    async def delete(self, scope: str, key: str) -> None:
        await self._execute(delete(idempotency_keys).where(_key_is(scope, key)))


# -- rows and domain objects ------------------------------------------------------------


def _to_row(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "source_type": job.source_type.value,
        "source_uri": job.source_uri,
        "file_name": job.file_name,
        "file_size": job.file_size,
        "mime_type": job.mime_type,
        "priority": job.priority.rank,
        "mode": job.mode.value,
        "metadata": job.metadata,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "worker_id": job.worker_id,
        "lease_seconds": job.lease_seconds,
        "lease_expires_at": job.lease_expires_at,
        "run_after": job.run_after,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result": job.result,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def _to_job(row: RowMapping) -> Job:
    fields = dict(row)
    # Fresh JSON containers per job: one row may be mapped twice (get_many of repeats).
    fields["metadata"] = copy.deepcopy(row["metadata"])
    fields["result"] = copy.deepcopy(row["result"])
    fields["status"] = JobStatus(row["status"])
    fields["source_type"] = SourceType(row["source_type"])
    fields["priority"] = Priority.from_rank(row["priority"])
    fields["mode"] = Mode(row["mode"])
    return Job(**fields)


def _detection_row(job_id: UUID, result: DetectionResult) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "mime_type": result.mime_type,
        "label": result.label,
        "group_name": result.group,
        "confidence": result.confidence,
        "detector": result.detector,
        "sha256": result.sha256,
        "size": result.size,
        "detected_at": result.detected_at,
    }


def _to_detection(row: RowMapping) -> DetectionResult:
    return DetectionResult(
        mime_type=row["mime_type"],
        label=row["label"],
        group=row["group_name"],
        confidence=row["confidence"],
        detector=row["detector"],
        sha256=row["sha256"],
        size=row["size"],
        detected_at=row["detected_at"],
    )


# -- queries ----------------------------------------------------------------------------


def _filtered(stmt: Select[Any], f: JobFilter, dialect: str) -> Select[Any]:
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
    return stmt.where(*conditions)


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


def _order(sort: JobSort) -> list[ColumnElement[Any]]:
    columns = [jobs.c.priority] if sort.by_priority else []
    columns += [jobs.c.created_at, jobs.c.id]
    return [col.desc() if sort.descending else col.asc() for col in columns]


def _after(keyset: Keyset, sort: JobSort) -> ColumnElement[bool]:
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


def _key_is(scope: str, key: str) -> ColumnElement[bool]:
    return and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)


def _chunks(ids: list[UUID]) -> Iterator[list[UUID]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]
