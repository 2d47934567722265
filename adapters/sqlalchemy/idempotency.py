"""Idempotency keys of create requests on SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from chute.adapters.sqlalchemy.group_commit import Insert
from chute.adapters.sqlalchemy.repositories import SqlRepository, Statements
from chute.adapters.sqlalchemy.tables import idempotency_keys
from chute.application.errors import IdempotencyConflict
from chute.application.ports import IdempotencyKeyRepository, IdempotencyRecord
from sqlalchemy import ColumnElement, and_, delete, exc, select


class SqlIdempotencyKeyRepository(SqlRepository, IdempotencyKeyRepository):
    """Idempotency keys in the `idempotency_keys` table; (scope, key) is its primary key."""

    def __init__(self, db: Statements) -> None:
        super().__init__(db)
        # When each key was stored, as this unit of work read it: `delete` forgets that
        # record only, never one another request stored since (see `delete`).
        self._read: dict[tuple[str, str], datetime] = {}

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        stmt = select(idempotency_keys).where(_key_is(scope, key))
        row = (await self._db.read(stmt)).mappings().first()
        if row is None:
            return None
        self._read[scope, key] = row["created_at"]
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
        await self._db.insert(Insert(idempotency_keys, [row], _conflict))

    async def delete(self, scope: str, key: str) -> None:
        # A key read before the write transaction began (a deferred unit's, or one read
        # before another request's transaction replaced it) may have been replaced since:
        # forget it only as it was read. Otherwise this would delete the other request's
        # fresh key, and both requests would create jobs under one key; this way our
        # insert conflicts, and the engine replays the other's answer.
        condition = _key_is(scope, key)
        stored = self._read.pop((scope, key), None)
        if stored is not None:
            condition = and_(condition, idempotency_keys.c.created_at == stored)
        await self._db.write(delete(idempotency_keys).where(condition))

    async def delete_older(self, created_before: datetime) -> int:
        stmt = delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before)
        return (await self._db.write(stmt)).rowcount


def _conflict(_e: exc.IntegrityError) -> Exception:
    # The primary key is the only constraint that can fail here: another transaction
    # (or another unit of work of the same group) stored the key first.
    return IdempotencyConflict()


def _key_is(scope: str, key: str) -> ColumnElement[bool]:
    return and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
