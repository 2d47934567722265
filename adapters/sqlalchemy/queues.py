"""The settings of queues in the `queues` table, and the parts of their limits in
`queue_parts` (see tables.py: a claim locks one part, not the whole queue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.rows import queue_row, to_queue
from chute.adapters.sqlalchemy.statements import HELD
from chute.adapters.sqlalchemy.tables import jobs, queue_parts, queues
from chute.application.ports import QueueRepository, Room
from chute.domain import QueueSettings
from sqlalchemy import Insert, Select, case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

MAX_PARTS = 8  # claims of one limited queue that can run at once
STRAY = -1  # the part of held jobs beyond a lowered limit


def _held_by_part(queue: str, part: int) -> Select[Any]:
    """(held jobs of `part`, held jobs of no part, whether the queue is paused: None when
    it has no limit any more) of `queue`, in one statement: the counts read a range of
    the queue index's prefix, at most the limit and the strays long."""
    c, q = jobs.c, queues.c
    counted = func.coalesce(func.sum(case((c.limit_part == part, 1), else_=0)), 0)
    strays = func.coalesce(
        func.sum(case(((c.limit_part.is_(None)) | (c.limit_part < 0), 1), else_=0)), 0
    )
    paused = (
        select(q.paused).where(q.name == queue, q.concurrency_limit.is_not(None)).scalar_subquery()
    )
    return select(counted, strays, paused).where(c.queue == queue, c.status.in_(HELD))


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
        c, q = jobs.c, queues.c
        held = (
            select(func.count())
            .where(c.queue == q.name, c.status.in_(HELD), q.concurrency_limit.is_not(None))
            .scalar_subquery()
        )
        rows = (await self._db.read(select(queues, held.label("held")).order_by(q.name))).mappings()
        return [(to_queue(row), int(row["held"])) for row in rows]

    async def take_room(self, queue: QueueSettings, held: int, wanted: int) -> Sequence[Room]:
        if self._dialect != "postgresql":
            # SQLite: one writer at a time, so the whole limit is one room, and nothing
            # has changed since the claim read `queue` and `held` in this transaction.
            free = queue.capacity(held) or 0
            return [Room(0, free)] if free > 0 else []
        name = queue.name
        p = queue_parts.c
        rooms: list[Room] = []
        tried: list[int] = []
        while sum(room.free for room in rooms) < wanted and len(tried) < MAX_PARTS:
            stmt = select(p.part, p.capacity).where(p.queue == name, p.part.not_in(tried))
            # Any part no other claim holds.
            stmt = stmt.order_by(func.random()).with_for_update(skip_locked=True)
            row: Any = (await self._db.write(stmt.order_by(p.part).limit(1))).first()
            if row is None:
                break  # every other part is full, or being claimed into
            part, capacity = int(row[0]), int(row[1])
            tried.append(part)
            # Read after the part's lock, so that a claim that held it before has
            # committed, and so has a pause (a change of the limit locks every part).
            counts: Any = (await self._db.write(_held_by_part(name, part))).one()
            mine, strays, paused = int(counts[0]), int(counts[1]), counts[2]
            if strays or paused is None or paused:
                return []  # held beyond a lowered limit (wait for them to end), or paused
            if capacity > mine:
                rooms.append(Room(part, capacity - mine))
        return rooms

    async def occupy(self, rooms: Sequence[Room], job_ids: Sequence[UUID]) -> None:
        if self._dialect != "postgresql":
            return  # counted from the whole queue (`_whole_room`)
        start = 0
        for room in rooms:
            ids = job_ids[start : start + room.free]
            start += len(ids)
            if ids:
                stmt = update(jobs).where(jobs.c.id.in_(ids)).values(limit_part=room.part)
                await self._db.write(stmt)

    async def spread(self, name: str, limit: int | None) -> None:
        if self._dialect != "postgresql":
            return  # one room, counted from the whole queue
        p, c = queue_parts.c, jobs.c
        # Wait for the claims in the parts to commit, then start over.
        await self._db.write(select(p.part).where(p.queue == name).with_for_update())
        await self._db.write(delete(queue_parts).where(p.queue == name))
        held_ids = select(c.id).where(c.queue == name, c.status.in_(HELD)).order_by(c.id)
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
