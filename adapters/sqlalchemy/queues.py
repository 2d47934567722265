"""The settings of queues in the `queues` table."""

from __future__ import annotations

from typing import Any

from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.rows import queue_row, to_queue
from chute.adapters.sqlalchemy.tables import queues
from chute.application.ports import QueueRepository
from chute.domain import QueueSettings
from sqlalchemy import Insert, select, update
from sqlalchemy.dialects import postgresql, sqlite


class SqlQueueRepository(SqlRepository, QueueRepository):
    """Queue settings, one row a queue that has any."""

    async def list(self) -> list[QueueSettings]:
        stmt = select(queues).order_by(queues.c.name)
        return [to_queue(row) for row in (await self._db.read(stmt)).mappings()]

    async def get(self, name: str) -> QueueSettings | None:
        row = (await self._db.read(select(queues).where(queues.c.name == name))).mappings().first()
        return to_queue(row) if row else None

    async def lock(self, name: str) -> QueueSettings | None:
        stmt = select(queues).where(queues.c.name == name)
        if self._dialect == "postgresql":
            # Waits for the claim or change that holds it; the row is then read as that
            # one committed it. SQLite's write transaction holds the whole file already.
            stmt = stmt.with_for_update()
        row = (await self._db.write(stmt)).mappings().first()
        return to_queue(row) if row else None

    async def add_if_absent(self, settings: QueueSettings) -> None:
        await self._db.write(self._insert().values(queue_row(settings)).on_conflict_do_nothing())

    async def update(self, settings: QueueSettings) -> None:
        row = queue_row(settings)
        stmt = update(queues).where(queues.c.name == row.pop("name")).values(row)
        if (await self._db.write(stmt)).rowcount == 0:
            raise ValueError(f"queue {settings.name!r} has no settings")

    def _insert(self) -> Any:
        dialect: Any = postgresql if self._dialect == "postgresql" else sqlite
        insert: Insert = dialect.insert(queues)
        return insert
