"""The storage ports on SQLAlchemy Core: rows map to domain objects by explicit functions.

They behave exactly as the in-memory adapters in `chute.adapters.memory` do; one
contract suite (tests/integration) holds both to it.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from chute.adapters.sqlalchemy.group_commit import Insert
from chute.adapters.sqlalchemy.rows import (
    DETECTION_COLUMNS,
    DETECTION_PREFIX,
    detection_row,
    event_row,
    job_row,
    to_event,
    to_jobs,
)
from chute.adapters.sqlalchemy.statements import (
    after,
    claimable,
    expired,
    filtered,
    finished_per_minute,
    list_order,
    oldest_ready,
    purgeable,
    queue_counts,
    queue_names,
)
from chute.adapters.sqlalchemy.tables import (
    content_folder,
    detection_results,
    job_events,
    jobs,
)
from chute.application.ports import (
    DetectionResultRepository,
    JobEventRepository,
    JobRepository,
)
from chute.application.queries import (
    ClaimFilter,
    FedEvent,
    JobFilter,
    JobQuery,
    JobSort,
    MinuteCounts,
    QueueCounts,
)
from chute.domain import DetectionResult, Job, JobEvent, JobStatus
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Executable,
    Select,
    bindparam,
    delete,
    exc,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)

IN_CHUNK = 500  # ids per IN list, well under every driver's limit on parameters

# Statements are immutable: a query asked again (the first page of a list a console
# polls, a filter) reuses its statement, whose SQLAlchemy cache key is then computed
# once. Building it and its key was a tenth of a page's time.
STATEMENT_CACHE = 256


class Statements(Protocol):
    """Where repositories run their statements: their unit of work (`SqlUnitOfWork`)."""

    dialect: str

    async def read(self, stmt: Executable, params: Any = None) -> CursorResult[Any]:
        """Run a read that takes no lock."""

    async def write(self, stmt: Executable, params: Any = None) -> CursorResult[Any]:
        """Run a statement in the write transaction now: a write, or a locking read."""

    async def read_committed(self, stmt: Executable) -> CursorResult[Any]:
        """Run a read that need not see this unit's own held inserts: in the transaction
        once it has begun, else (a deferred unit) on its read connection, so that the
        held inserts stay held for group commit."""

    async def insert(self, item: Insert) -> None:
        """Insert rows, now or at commit; a broken constraint raises `item.error`."""

    # The part of a limit each job this transaction claimed took room in (PostgreSQL's
    # `SqlQueueRepository.take_room`), written with the job's row by `update_many`.
    limit_parts: dict[UUID, int]

    def add_new_jobs(self, job_ids: Iterable[UUID]) -> None:
        """Note jobs this transaction inserts."""

    def is_new_job(self, job_id: UUID) -> bool:
        """Whether this transaction inserted the job."""


class SqlRepository:
    """What every repository shares: the unit of work it runs its statements on."""

    def __init__(self, db: Statements) -> None:
        self._db = db

    @property
    def _dialect(self) -> str:
        return self._db.dialect


class SqlJobRepository(SqlRepository, JobRepository):
    """Jobs in the `jobs` table."""

    # Whether its unit of work (one transaction) has `_WALK_IN_ORDER`'s settings yet.
    _walking_in_order = False

    async def add(self, jobs_: Sequence[Job]) -> None:
        if not jobs_:
            return
        self._db.add_new_jobs(job.id for job in jobs_)
        await self._db.insert(Insert(jobs, [job_row(job) for job in jobs_], _existing_id))

    async def get(self, job_id: UUID, *, for_update: bool = False) -> Job | None:
        if for_update:
            # SQLite has no row locks: its write transactions hold the whole file.
            stmt = _BY_ID_LOCKED if self._dialect == "postgresql" else _BY_ID
            result = await self._db.write(stmt, {"job_id": job_id})
        else:
            result = await self._db.read(_BY_ID, {"job_id": job_id})
        found = to_jobs(result)
        return found[0] if found else None

    async def get_many(self, job_ids: Sequence[UUID], *, for_update: bool = False) -> list[Job]:
        found: dict[UUID, Job] = {}
        for chunk in _chunks(list(dict.fromkeys(job_ids))):
            params = {"job_ids": chunk}
            if not for_update:
                result = await self._db.read(_BY_IDS, params)
            else:  # SQLite has no row locks: its write transactions hold the whole file.
                stmt = _BY_IDS_LOCKED if self._dialect == "postgresql" else _BY_IDS
                result = await self._db.write(stmt, params)
            found.update((job.id, job) for job in to_jobs(result))
        return _in_order(found, job_ids)

    async def update(self, job: Job) -> None:
        result = await self._db.write(_UPDATE_BY_ID, _update_row(job))
        if result.rowcount == 0:
            raise ValueError(f"job {job.id} does not exist")

    async def update_many(self, jobs_: Sequence[Job]) -> None:
        if not jobs_:
            return
        rows = [_update_row(job) for job in jobs_]
        parts = self._db.limit_parts
        if parts and any(job.id in parts for job in jobs_):
            for job, row in zip(jobs_, rows, strict=True):  # every row: one executemany
                row["limit_part"] = parts.get(job.id)
        result = await self._db.write(_UPDATE_BY_ID, rows)  # one executemany
        if result.supports_sane_multi_rowcount() and result.rowcount != len(rows):
            raise ValueError("jobs not updated: some do not exist")

    async def running_since(self, since: datetime, limit: int) -> list[Job]:
        c = jobs.c
        stmt = (
            select(jobs)
            .where(c.status == JobStatus.RUNNING.value, c.updated_at >= since)
            .order_by(c.updated_at, c.id)
            .limit(limit)
        )
        return to_jobs(await self._db.read(_joined(stmt)))

    async def find(self, query: JobQuery) -> list[Job]:
        return to_jobs(await self._db.read(_find(query, self._dialect)))

    async def count(self, filt: JobFilter, *, at_most: int | None = None) -> int:
        return int((await self._db.read(_count(filt, at_most, self._dialect))).scalar_one())

    async def lock_claimable(self, filt: ClaimFilter, now: datetime, limit: int) -> list[Job]:
        if self._dialect == "postgresql" and not self._walking_in_order:
            # For the rest of the transaction: once, however many looks a claim takes.
            await self._db.write(_WALK_IN_ORDER)
            self._walking_in_order = True
        return await self._locked(_claim(filt, limit, self._dialect), {"now": now})

    async def queue_names(self) -> set[str]:
        return set((await self._db.read(queue_names())).scalars())

    async def has_queue(self, queue: str) -> bool:
        one: Select[Any] = select(literal_column("1")).where(jobs.c.queue == queue).limit(1)
        return (await self._db.read(one)).first() is not None

    async def queue_counts(
        self, now: datetime, since: datetime, queues: Collection[str]
    ) -> dict[str, QueueCounts]:
        names = sorted(queues)
        if not names:
            return {}
        found: dict[str, dict[str, int]] = {}
        oldest: dict[str, datetime] = {}
        live, scheduled, finished = queue_counts(now, since, names)
        rows: list[Any] = list((await self._db.read(live)).all())
        for name, status, count in rows:
            found.setdefault(name, {})[status] = int(count)
        rows = list((await self._db.read(scheduled)).all())
        for name, count in rows:
            counts = found.setdefault(name, {})
            counts["scheduled"] = int(count)
            counts["pending"] = counts.get("pending", 0) - int(count)
        rows = list((await self._db.read(finished)).all())
        for name, status, count in rows:
            found.setdefault(name, {})[f"{status}_last_hour"] = int(count)
        ready = [name for name, counts in sorted(found.items()) if counts.get("pending")]
        for start in range(0, len(ready), OLDEST_CHUNK):
            stmt = oldest_ready(now, ready[start : start + OLDEST_CHUNK])
            rows = list((await self._db.read(stmt)).all())
            for name, created in rows:
                moment = _aware(created)
                if moment is not None:
                    oldest[name] = min(oldest.get(name, moment), moment)
        return {
            name: QueueCounts(**counts, oldest_pending_at=oldest.get(name))
            for name, counts in found.items()
        }

    async def finished_per_minute(self, since: datetime) -> list[MinuteCounts]:
        found: dict[str, dict[str, int]] = {}
        rows: list[Any] = list(
            (await self._db.read(finished_per_minute(since, self._dialect))).all()
        )
        for minute, status, count in rows:
            found.setdefault(minute, {})[status] = int(count)
        return [
            MinuteCounts(datetime.fromisoformat(minute + ":00+00:00"), **counts)
            for minute, counts in sorted(found.items())
        ]

    async def lock_expired(self, now: datetime, limit: int) -> list[Job]:
        return await self._locked(_locking(expired(now, limit), self._dialect))

    async def lock_purgeable(
        self, statuses: frozenset[JobStatus], updated_before: datetime, limit: int
    ) -> list[Job]:
        stmt = purgeable(statuses, updated_before, limit)
        return await self._locked(_locking(stmt, self._dialect))

    async def delete(self, job_ids: Sequence[UUID]) -> int:
        deleted = 0
        for chunk in _chunks(list(dict.fromkeys(job_ids))):
            # The foreign keys cascade, but SQLite does so only with its foreign_keys
            # pragma on: the children go first, by name, whatever the connection.
            await self._db.write(delete(job_events).where(job_events.c.job_id.in_(chunk)))
            children = delete(detection_results).where(detection_results.c.job_id.in_(chunk))
            await self._db.write(children)
            result = await self._db.write(delete(jobs).where(jobs.c.id.in_(chunk)))
            deleted += result.rowcount
        return deleted

    async def referenced_folders(self, folders: Sequence[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        for chunk in _chunks(list(dict.fromkeys(folders))):
            folder = content_folder()  # served by ix_jobs_content_folder
            stmt = select(folder).distinct().where(folder.in_([str(f) for f in chunk]))
            found.update(UUID(value) for value in (await self._db.read(stmt)).scalars())
        return found

    async def _locked(self, stmt: Select[Any], params: Any = None) -> list[Job]:
        """The jobs of a `_locking` statement, locked in the write transaction."""
        return to_jobs(await self._db.write(stmt, params))


class SqlJobEventRepository(SqlRepository, JobEventRepository):
    """The status history of jobs in the `job_events` table; its id gives the order."""

    async def add(self, events: Sequence[JobEvent]) -> None:
        if events:
            await self._db.insert(Insert(job_events, [event_row(event) for event in events]))

    async def list(self, job_id: UUID) -> list[JobEvent]:
        stmt = select(job_events).where(job_events.c.job_id == job_id).order_by(job_events.c.id)
        return [to_event(row) for row in (await self._db.read(stmt)).mappings()]

    async def feed(self, after: int | None, limit: int) -> Sequence[FedEvent]:
        e = job_events.c
        if self._dialect != "postgresql":
            # One writer at a time commits, in id order: ids are the feed's order.
            stmt = select(job_events).order_by(e.id).limit(limit)
            if after is not None:
                stmt = stmt.where(e.id > after)
            rows = (await self._db.read(stmt)).mappings()
            return [FedEvent(row["id"], (0, row["id"]), to_event(row)) for row in rows]
        stmt = select(job_events).where(e.tx < _HORIZON).order_by(e.tx, e.id).limit(limit)
        if after is not None:
            start = await self.feed_position(after)
            if start is not None:
                stmt = stmt.where(tuple_(e.tx, e.id) > tuple_(literal(start[0]), literal(after)))
            else:  # purged since: on from the next id
                stmt = stmt.where(e.id > after)
        rows = (await self._db.read(stmt)).mappings()
        return [FedEvent(row["id"], (row["tx"], row["id"]), to_event(row)) for row in rows]

    async def feed_head(self) -> FedEvent | None:
        e = job_events.c
        stmt = select(job_events).order_by(e.id.desc()).limit(1)
        if self._dialect == "postgresql":
            stmt = select(job_events).where(e.tx < _HORIZON)
            stmt = stmt.order_by(e.tx.desc(), e.id.desc()).limit(1)
        row = (await self._db.read(stmt)).mappings().first()
        if row is None:
            return None
        return FedEvent(row["id"], (row["tx"] or 0, row["id"]), to_event(row))

    async def feed_position(self, event_id: int) -> tuple[int, int] | None:
        e = job_events.c
        row = (await self._db.read(select(e.tx).where(e.id == event_id))).first()
        return None if row is None else (row[0] or 0, event_id)


class SqlDetectionResultRepository(SqlRepository, DetectionResultRepository):
    """Detection results in the `detection_results` table, one per job."""

    async def add(self, job_id: UUID, result: DetectionResult) -> None:
        table = detection_results
        if not self._db.is_new_job(job_id):  # a job inserted here has no result to replace
            await self._db.write(delete(table).where(table.c.job_id == job_id))
        await self._db.insert(Insert(table, [detection_row(job_id, result)]))


# -- helpers ----------------------------------------------------------------------------

_DETECTION_COLUMNS = [
    detection_results.c[name].label(DETECTION_PREFIX + name) for name in DETECTION_COLUMNS
]


# The oldest transaction still running when the statement began (PostgreSQL): every
# event of an older one is committed or gone, and no newer one can come before them.
_HORIZON: ColumnElement[int] = literal_column(
    "(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint"
)


@functools.lru_cache(maxsize=STATEMENT_CACHE)
def _find(query: JobQuery, dialect: str) -> Select[Any]:
    """The SELECT of a page of jobs."""
    stmt = filtered(select(jobs), query.filter, dialect)
    stmt = stmt.order_by(*list_order(query.sort)).limit(query.limit)
    if query.after is not None:
        return _joined(stmt.where(after(query.after, query.sort)))
    if query.offset:
        return _page_joined(stmt.offset(query.offset), query.sort)
    return _joined(stmt)


@functools.lru_cache(maxsize=STATEMENT_CACHE)
def _count(filt: JobFilter, at_most: int | None, dialect: str) -> Select[Any]:
    """The count of the jobs `filt` matches, up to `at_most`: over a LIMITed subquery,
    so that the database stops after `at_most` matching rows instead of passing over
    every one of them."""
    matching = filtered(select(literal_column("1")).select_from(jobs), filt, dialect)
    if at_most is not None:
        matching = matching.limit(at_most)
    return select(func.count()).select_from(matching.subquery())


@functools.lru_cache(maxsize=STATEMENT_CACHE)
def _claim(filt: ClaimFilter, limit: int, dialect: str) -> Select[Any]:
    """The claim of up to `limit` jobs that `filt` accepts, due by the `now` parameter."""
    return _locking(claimable(filt, limit, dialect), dialect)


def _locking(stmt: Select[Any], dialect: str) -> Select[Any]:
    """`stmt`'s jobs with their detection results, locked for this transaction."""
    stmt = _joined(stmt)
    if dialect == "postgresql":
        # Rows another claimer or rescuer holds are skipped, not waited for; a row
        # that changed meanwhile is checked against WHERE again before it is locked.
        return stmt.with_for_update(of=jobs, skip_locked=True)
    # SQLite has no row locks and needs none: write units of work begin with BEGIN
    # IMMEDIATE, so this transaction is the only writer of the whole database until
    # it commits, and no row it reads here can change before then.
    return stmt


def _joined(stmt: Select[Any]) -> Select[Any]:
    """A SELECT of `jobs` rows with each one's detection result beside it (NULLs when it
    has none): one query, where reading the results apart took a second transaction.
    For selects of a few rows, without OFFSET: each row costs one probe of the result's
    primary key. (Cheaper to build than `_page_joined`'s subquery, whose columns were a
    tenth of a page's CPU.)"""
    results = detection_results
    on = results.c.job_id == jobs.c.id
    return stmt.outerjoin(results, on).add_columns(*_DETECTION_COLUMNS)


def _page_joined(stmt: Select[Any], sort: JobSort) -> Select[Any]:
    """A page of jobs (`stmt`, in `sort`) with their detection results: the page is
    chosen first and joined after, for joined inside, a deep OFFSET would join every row
    it skips (PostgreSQL even turned to a hash join of the whole table and a sort)."""
    page, results = stmt.subquery("page"), detection_results
    return (
        select(page, *_DETECTION_COLUMNS)
        .select_from(page.outerjoin(results, results.c.job_id == page.c.id))
        .order_by(*list_order(sort, page))
    )


# Queues a statement looks for the oldest ready job of: 4 seeks each (one a priority),
# under SQLite's 500 SELECTs of one compound statement.
OLDEST_CHUNK = 100

# The SET clause is made of the keys of the rows (every column but id); the id goes
# to the WHERE clause under a name of its own, as a bound parameter may not share one.
_UPDATE_BY_ID = update(jobs).where(jobs.c.id == bindparam("job_id"))

# A claim walks its index in claim order (`ix_jobs_status_priority_desc_created_at_id`,
# or a queue's) and stops at `limit` jobs. Left to its statistics, PostgreSQL could
# instead fetch every pending job and sort them: before any ANALYZE (a new table, or a
# burst of jobs faster than autovacuum's), it judged the pending jobs a handful and
# sorted the whole backlog at each claim (4 ms a claim at 5,000 jobs, 50 ms at 20,000;
# two thirds of the database's time in the workers' benchmark). So sorting is off for
# the rest of the claim's transaction. A statement there that must sort all the same
# (`chute_room_parts` picks a part of a limit at random) is then costed at 10^10, which
# started JIT compilation, 100 to 180 ms a call: JIT is off too.
# And plans are reused: chute's connections plan each run of a statement for its values
# (`plan_cache_mode` in engine.py, for deep list pages); the statements of a claim (its
# locking SELECT, the UPDATE of each job, the INSERT of their events) are the same at
# every turn of every worker, and planning them each time was 40% of the database's CPU
# a job (0.74-0.87 ms against 0.41-0.48 with plans reused, in the workers' benchmark).
_WALK_IN_ORDER = text(
    "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true),"
    " set_config('plan_cache_mode', 'auto', true)"
)

# One job by its `job_id` parameter, with its detection result; and locked.
_BY_ID = _joined(select(jobs).where(jobs.c.id == bindparam("job_id")))
_BY_ID_LOCKED = _BY_ID.with_for_update(of=jobs)
# Jobs by the ids of their `job_ids` list; and locked, in one order, so that two
# lockers of overlapping sets cannot deadlock.
_BY_IDS = _joined(select(jobs).where(jobs.c.id.in_(bindparam("job_ids", expanding=True))))
_BY_IDS_LOCKED = _BY_IDS.order_by(jobs.c.id).with_for_update(of=jobs)


def _update_row(job: Job) -> dict[str, Any]:
    row = job_row(job)
    row["job_id"] = row.pop("id")
    return row


def _existing_id(e: exc.IntegrityError) -> Exception:
    return ValueError(f"jobs not added (does an id exist already?): {e.orig}")


def _in_order(found: dict[UUID, Job], job_ids: Sequence[UUID]) -> list[Job]:
    """The jobs found, in the order asked; a repeated id gets a copy, so that no two jobs
    share their JSON containers."""
    ordered: list[Job] = []
    seen: set[UUID] = set()
    for job_id in job_ids:
        if job_id in found:
            ordered.append(copy.deepcopy(found[job_id]) if job_id in seen else found[job_id])
            seen.add(job_id)
    return ordered


def _aware(value: Any) -> datetime | None:
    """MIN() of a time column, which SQLite answers as its stored text."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value) + "+00:00")


def _chunks(ids: list[UUID]) -> Iterator[list[UUID]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]
