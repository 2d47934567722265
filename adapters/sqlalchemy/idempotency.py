"""Idempotency keys of create requests on SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.tables import idempotency_keys
from chute.application.errors import IdempotencyConflict
from chute.application.ports import IdempotencyKeyRepository, IdempotencyRecord
from sqlalchemy import ColumnElement, and_, delete, exc, insert, select


class SqlIdempotencyKeyRepository(SqlRepository, IdempotencyKeyRepository):
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

    async def delete_older(self, created_before: datetime) -> int:
        stmt = delete(idempotency_keys).where(idempotency_keys.c.created_at < created_before)
        return (await self._execute(stmt)).rowcount


def _key_is(scope: str, key: str) -> ColumnElement[bool]:
    return and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
