"""The settings of queues in the `queues` table, and the parts of their limits in
`queue_parts` (see tables.py: a claim locks one part, not the whole queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.rows import queue_row, to_queue
from chute.adapters.sqlalchemy.tables import HELD_ROWS, jobs, queue_parts, queues
from chute.application.ports import QueueRepository
from chute.domain import QueueSettings
from sqlalchemy import Insert, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

MAX_PARTS = 8  # claims of one limited queue that can run at once
STRAY = -1  # the part of held jobs beyond a lowered limit


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

    async def for_claims(self) -> Sequence[tuple[QueueSettings, int]]:
        rows = (await self._db.read(_FOR_CLAIMS)).mappings()
        return [(to_queue(row), int(row["held"])) for row in rows]

    async def take_room(self, queue: QueueSettings, held: int, job_ids: Sequence[UUID]) -> int:
        if self._dialect != "postgresql":
            # SQLite: one writer at a time, so the whole limit is one room, and nothing
            # has changed since the claim read `queue` and `held` in this transaction.
            return min(queue.capacity(held) or 0, len(job_ids))
        # Lock parts and count their held jobs: one call of the function of migration
        # 0017, whose statements each see what committed before them. It answers the
        # part of each job it took room for; the claim's UPDATE of the jobs writes them.
        stmt = select(func.chute_room_parts(queue.name, len(job_ids)))
        parts: list[int] = list((await self._db.write(stmt)).scalar_one())
        self._db.limit_parts.update(zip(job_ids, parts, strict=False))
        return len(parts)

    async def spread(self, name: str, limit: int | None) -> None:
        if self._dialect != "postgresql":
            return  # one room, counted from the whole queue
        p, c = queue_parts.c, jobs.c
        # Wait for the claims in the parts to commit, then start over.
        await self._db.write(select(p.part).where(p.queue == name).with_for_update())
        await self._db.write(delete(queue_parts).where(p.queue == name))
        held_ids = select(c.id).where(c.queue == name, HELD_ROWS).order_by(c.id)
        held = list((await self._db.write(held_ids)).scalars())
        if limit is None:
            if held:
                await self._db.write(update(jobs).where(c.id.in_(held)).values(limit_part=None))
            return
        count = min(limit, MAX_PARTS)
        capacities = [limit // count + (1 if n < limit % count else 0) for n in range(count)]
        rows = [{"queue": name, "part": n, "capacity": cap} for n, cap in enumerate(capacities)]
        await self._db.write(insert(queue_parts), rows)
        start = 0
        for part, cap in [*enumerate(capacities), (STRAY, len(held))]:
            ids = held[start : start + cap]
            start += len(ids)
            if ids:
                await self._db.write(update(jobs).where(c.id.in_(ids)).values(limit_part=part))

    def _insert(self) -> Any:
        dialect: Any = postgresql if self._dialect == "postgresql" else sqlite
        insert: Insert = dialect.insert(queues)
        return insert


# Every queue's settings, with the held jobs of each limited one (built once: a claim
# reads it each time).
_HELD = (
    select(func.count())
    .where(jobs.c.queue == queues.c.name, HELD_ROWS, queues.c.concurrency_limit.is_not(None))
    .scalar_subquery()
)
_FOR_CLAIMS = select(queues, _HELD.label("held")).order_by(queues.c.name)
