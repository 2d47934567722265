"""The unit of work on SQLAlchemy: one connection, one transaction, four repositories."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

from chute.adapters.sqlalchemy.engine import READ_ONLY, database_errors
from chute.adapters.sqlalchemy.idempotency import SqlIdempotencyKeyRepository
from chute.adapters.sqlalchemy.repositories import (
    SqlDetectionResultRepository,
    SqlJobEventRepository,
    SqlJobRepository,
)
from chute.application.ports import UnitOfWork, UnitOfWorkFactory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("chute.adapters.sqlalchemy")


class SqlDatabase(UnitOfWorkFactory):
    """A SQLite or PostgreSQL database behind an async engine; call it for a unit of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and its busy handler polls with sleeps and
        # serves no one in order: writers of this process queue here instead, first
        # come first served, and busy_timeout is left for writers of other processes.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        lock = None if read_only else self._write_lock
        return SqlUnitOfWork(self.engine, read_only=read_only, write_lock=lock)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


class SqlUnitOfWork(UnitOfWork):
    """One transaction on one connection; rolled back on exit unless committed.

    After `commit()` the unit of work may still be used: the next statement begins a
    new transaction of the same kind, which exit rolls back unless committed too.
    """

    jobs: SqlJobRepository
    detections: SqlDetectionResultRepository
    idempotency: SqlIdempotencyKeyRepository
    events: SqlJobEventRepository

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        read_only: bool = False,
        write_lock: asyncio.Lock | None = None,
    ) -> None:
        self._engine, self._read_only, self._write_lock = engine, read_only, write_lock
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        if self._write_lock is not None:
            await self._write_lock.acquire()
        try:
            return await self._begin()
        except BaseException:
            if self._write_lock is not None:
                self._write_lock.release()
            raise

    async def _begin(self) -> Self:
        with database_errors():
            conn = await self._engine.connect()
            try:
                if self._read_only:
                    # SQLite: plain BEGIN instead of BEGIN IMMEDIATE; PostgreSQL: READ ONLY.
                    options = {READ_ONLY: True}
                    if conn.dialect.name == "postgresql":
                        options["postgresql_readonly"] = True
                    await conn.execution_options(**options)
                await conn.begin()
            except BaseException:
                await conn.close()
                raise
        self._conn = conn
        self.jobs = SqlJobRepository(conn)
        self.detections = SqlDetectionResultRepository(conn)
        self.idempotency = SqlIdempotencyKeyRepository(conn)
        self.events = SqlJobEventRepository(conn)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._end(e)
        finally:
            if self._write_lock is not None:
                self._write_lock.release()

    async def _end(self, e: BaseException | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            with database_errors():
                try:
                    if conn.in_transaction():
                        await conn.rollback()
                finally:
                    await conn.close()
        except Exception:
            if e is None:
                raise
            # Never hide the error that ended the unit of work behind a cleanup failure.
            log.warning("rollback after an error failed too", exc_info=True)

    async def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("the unit of work has not begun")
        with database_errors():
            await self._conn.commit()
