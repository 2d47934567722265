"""The unit of work on SQLAlchemy: one transaction, four repositories, and group commit
for the units that only insert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self
from uuid import UUID

from chute.adapters.sqlalchemy.engine import READ_ONLY, create_engine_for, sqlite_sync_engine
from chute.adapters.sqlalchemy.errors import database_errors, translate
from chute.adapters.sqlalchemy.group_commit import (
    AsyncWriter,
    GroupCommitter,
    Insert,
    LoopThreadWriter,
    Outcome,
    ThreadedWriter,
    insert_into,
)
from chute.adapters.sqlalchemy.idempotency import SqlIdempotencyKeyRepository
from chute.adapters.sqlalchemy.queues import SqlQueueRepository
from chute.adapters.sqlalchemy.repositories import (
    SqlDetectionResultRepository,
    SqlJobEventRepository,
    SqlJobRepository,
)
from chute.adapters.sqlalchemy.schedules import SqlScheduleRepository
from chute.adapters.sqlalchemy.tables import deployment
from chute.adapters.sqlalchemy.webhooks import SqlWebhookDeliveryRepository, SqlWebhookRepository
from chute.application.errors import ServiceUnavailable
from chute.application.ports import UnitOfWork, UnitOfWorkFactory
from sqlalchemy import CursorResult, Executable, exc, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("chute.adapters.sqlalchemy")


class SqlDatabase(UnitOfWorkFactory):
    """A SQLite or PostgreSQL database behind an async engine; call it for a unit of work.

    With `group_commit` (the default), units of work opened with `deferred=True` that
    only insert are committed together: see `chute.adapters.sqlalchemy.group_commit`.
    """

    def __init__(self, engine: AsyncEngine, *, group_commit: bool = True) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and its busy handler polls with sleeps and
        # serves no one in order: writers of this process queue here instead, first
        # come first served, and busy_timeout is left for writers of other processes.
        sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if sqlite else None
        self.committer: GroupCommitter | None = None
        if group_commit:
            self._writer = _writer_for(engine)
            self.committer = GroupCommitter(self._write_group)

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self, read_only=read_only, deferred=deferred)

    async def close(self) -> None:
        """Commit the inserts already handed over, and close what group commit opened."""
        if self.committer is not None:
            await self.committer.close()
            await self._writer.close()

    async def dispose(self) -> None:
        """`close()`, then close every pooled connection."""
        await self.close()
        await self.engine.dispose()

    async def _write_group(self, units: list[list[Insert]]) -> list[Outcome]:
        with database_errors():
            if self._write_lock is None:
                return await self._writer(units)
            async with self._write_lock:
                return await self._writer(units)


def _writer_for(engine: AsyncEngine) -> ThreadedWriter | LoopThreadWriter | AsyncWriter:
    """Where group commit writes: in a thread of its own, on a connection of its own
    (blocking for a SQLite file, async on PostgreSQL, made as `create_engine_for`
    makes them); on the engine's own connection for SQLite in memory."""
    if engine.dialect.name != "sqlite":
        return LoopThreadWriter(lambda: create_engine_for(engine.url))
    blocking = sqlite_sync_engine(engine.url)
    return ThreadedWriter(blocking) if blocking is not None else AsyncWriter(engine)


class SqlUnitOfWork(UnitOfWork):
    """One transaction on one connection; rolled back on exit unless committed.

    After `commit()` the unit of work may still be used: the next statement begins a
    new transaction of the same kind, which exit rolls back unless committed too.

    A `deferred` write unit (with group commit on) begins nothing until it must: its
    plain reads run on a read-only connection of their own, its inserts are held back
    and handed to the group committer at `commit()` (a conflict is raised there), and
    its first other statement (an update, a delete, a locking read, a read after an
    insert) begins its write transaction, held-back inserts first, as any unit's.
    """

    jobs: SqlJobRepository
    detections: SqlDetectionResultRepository
    idempotency: SqlIdempotencyKeyRepository
    events: SqlJobEventRepository
    queues: SqlQueueRepository
    schedules: SqlScheduleRepository
    webhooks: SqlWebhookRepository
    deliveries: SqlWebhookDeliveryRepository

    def __init__(
        self, database: SqlDatabase, *, read_only: bool = False, deferred: bool = False
    ) -> None:
        self._db, self._read_only = database, read_only
        self._committer = database.committer if deferred and not read_only else None
        self.dialect = database.engine.dialect.name
        self._conn: AsyncConnection | None = None  # the transaction's, once begun
        self._reader: AsyncConnection | None = None  # a deferred unit's, for plain reads
        self._held: list[Insert] = []  # a deferred unit's inserts, until commit
        self._new_jobs: set[UUID] = set()  # inserted in this transaction
        self.limit_parts: dict[UUID, int] = {}  # see `Statements.limit_parts`
        self._locked = False

    async def __aenter__(self) -> Self:
        self.jobs = SqlJobRepository(self)
        self.detections = SqlDetectionResultRepository(self)
        self.idempotency = SqlIdempotencyKeyRepository(self)
        self.events = SqlJobEventRepository(self)
        self.queues = SqlQueueRepository(self)
        self.schedules = SqlScheduleRepository(self)
        self.webhooks = SqlWebhookRepository(self)
        self.deliveries = SqlWebhookDeliveryRepository(self)
        if self._committer is None:
            await self._begin()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._held, self._new_jobs, self.limit_parts = [], set(), {}
        # The repositories and their unit of work refer to each other: part now, so that
        # reference counting frees them at once rather than the garbage collector later.
        del self.jobs, self.detections, self.idempotency, self.events, self.queues
        del self.schedules, self.webhooks, self.deliveries
        try:
            reader, self._reader = self._reader, None
            await self._end(reader, e)
            conn, self._conn = self._conn, None
            await self._end(conn, e)
        finally:
            if self._locked:
                self._locked = False
                assert self._db._write_lock is not None
                self._db._write_lock.release()

    async def commit(self) -> None:
        self._new_jobs = set()
        if self._conn is not None:
            with database_errors():
                await self._conn.commit()
            return
        if self._committer is None:
            raise RuntimeError("the unit of work has not begun")
        reader, self._reader = self._reader, None
        await self._end(reader, None)
        held, self._held = self._held, []
        if held:
            await self._committer.commit(held)

    async def deployment_id(self) -> UUID:
        try:
            found = (await self.read(select(deployment.c.id).limit(1))).scalar_one_or_none()
        except (ServiceUnavailable, exc.DBAPIError) as e:
            if not _missing_table(e):
                raise
            found = None
        if found is None:
            raise ServiceUnavailable(
                "the database has no deployment id: apply its migrations (chute migrate)"
            )
        return UUID(str(found))

    # -- what the repositories run their statements on ----------------------------------

    async def read(self, stmt: Executable, params: Any = None) -> CursorResult[Any]:
        """Run a plain read: in the transaction, or before a deferred unit's first write
        on its read connection (which sees the latest committed state)."""
        conn = self._conn
        if conn is None:
            conn = await self._writing() if self._held else await self._reading()
        with database_errors():
            return await conn.execute(stmt, params)

    async def read_committed(self, stmt: Executable) -> CursorResult[Any]:
        conn = self._conn or await self._reading()
        with database_errors():
            return await conn.execute(stmt)

    async def write(self, stmt: Executable, params: Any = None) -> CursorResult[Any]:
        """Run a statement that must run in the write transaction now: a write whose
        result is needed, or a read that locks."""
        conn = self._conn or await self._writing()
        with database_errors():
            return await conn.execute(stmt, params)

    async def insert(self, item: Insert) -> None:
        """Insert rows: now, or at commit for a deferred unit not yet writing; a broken
        constraint raises `item`'s error."""
        if self._conn is None and self._committer is not None:
            self._held.append(item)
            return
        await self._insert_now(self._conn or await self._writing(), item)

    def add_new_jobs(self, job_ids: Iterable[UUID]) -> None:
        self._new_jobs.update(job_ids)

    def is_new_job(self, job_id: UUID) -> bool:
        """Whether this transaction inserted the job (so nothing of it was stored before)."""
        return job_id in self._new_jobs

    # -- transactions -------------------------------------------------------------------

    async def _begin(self) -> AsyncConnection:
        lock = None if self._read_only else self._db._write_lock
        if lock is not None:
            await lock.acquire()
            self._locked = True
        try:
            self._conn = await self._connect(read_only=self._read_only)
        except BaseException:
            if lock is not None:
                self._locked = False
                lock.release()
            raise
        return self._conn

    async def _connect(self, *, read_only: bool) -> AsyncConnection:
        with database_errors():
            conn = await self._db.engine.connect()
            try:
                if read_only:
                    # SQLite: plain BEGIN instead of BEGIN IMMEDIATE, for a snapshot of
                    # the whole unit. PostgreSQL: no transaction at all. Under READ
                    # COMMITTED each statement takes its own snapshot in a transaction
                    # or out of one, so BEGIN and ROLLBACK were two round trips for
                    # nothing.
                    options: dict[str, Any] = {READ_ONLY: True}
                    if conn.dialect.name == "postgresql":
                        options["isolation_level"] = "AUTOCOMMIT"
                    await conn.execution_options(**options)
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        return conn

    async def _reading(self) -> AsyncConnection:
        if self._reader is None:
            self._reader = await self._connect(read_only=True)
        return self._reader

    async def _writing(self) -> AsyncConnection:
        """Begin a deferred unit's write transaction, and insert what it held back."""
        reader, self._reader = self._reader, None
        await self._end(reader, None)
        conn = await self._begin()
        held, self._held = self._held, []
        for item in held:
            await self._insert_now(conn, item)
        return conn

    @staticmethod
    async def _insert_now(conn: AsyncConnection, item: Insert) -> None:
        if not item.rows:
            return
        try:
            await conn.execute(insert_into(item.table), item.rows)
        except Exception as e:
            error = item.error(e)
            if error is e:
                error = translate(e)
            if error is e:
                raise
            raise error from e

    @staticmethod
    async def _end(conn: AsyncConnection | None, e: BaseException | None) -> None:
        if conn is None:
            return
        try:
            with database_errors():
                # close() rolls back a transaction still open and then spares the pool
                # its own reset: one rollback where rollback() and close() made two.
                await conn.close()
        except Exception:
            if e is None:
                raise
            # Never hide the error that ended the unit of work behind a cleanup failure.
            log.warning("rollback after an error failed too", exc_info=True)


def _missing_table(error: BaseException) -> bool:
    """Whether a statement failed because a table does not exist (not migrated yet)."""
    cause = error if isinstance(error, exc.DBAPIError) else error.__cause__
    if not isinstance(cause, exc.DBAPIError):
        return False
    # SQLite says so in words; PostgreSQL by SQLSTATE 42P01 (undefined_table).
    return "no such table" in str(cause.orig) or getattr(cause.orig, "sqlstate", None) == "42P01"
