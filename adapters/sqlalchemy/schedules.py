"""Schedules in the `schedules` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.rows import schedule_row, to_schedule
from chute.adapters.sqlalchemy.tables import schedules
from chute.application.ports import ScheduleRepository
from chute.domain import Schedule
from sqlalchemy import Insert, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite


class SqlScheduleRepository(SqlRepository, ScheduleRepository):
    """Schedules, one row each."""

    async def list(self) -> list[Schedule]:
        stmt = select(schedules).order_by(schedules.c.name)
        return [to_schedule(row) for row in (await self._db.read(stmt)).mappings()]

    async def get(self, name: str, *, for_update: bool = False) -> Schedule | None:
        stmt = select(schedules).where(schedules.c.name == name)
        if for_update:
            if self._dialect == "postgresql":
                # Waits for the transaction that holds it (another process taking the
                # same tick); the row is then read as that one committed it. SQLite's
                # write transaction holds the whole file already.
                stmt = stmt.with_for_update()
            result = await self._db.write(stmt)
        else:
            result = await self._db.read(stmt)
        row = result.mappings().first()
        return to_schedule(row) if row else None

    async def add(self, schedule: Schedule) -> bool:
        stmt = self._insert().values(schedule_row(schedule)).on_conflict_do_nothing()
        return bool((await self._db.write(stmt)).rowcount)

    async def update(self, schedule: Schedule) -> None:
        row = schedule_row(schedule)
        stmt = update(schedules).where(schedules.c.name == row.pop("name")).values(row)
        if (await self._db.write(stmt)).rowcount == 0:
            raise ValueError(f"no schedule is named {schedule.name!r}")

    async def delete(self, name: str) -> bool:
        stmt = delete(schedules).where(schedules.c.name == name)
        return bool((await self._db.write(stmt)).rowcount)

    async def due(self, now: datetime) -> Sequence[str]:
        stmt = (
            select(schedules.c.name)
            .where(~schedules.c.paused, schedules.c.next_run_at <= now)
            .order_by(schedules.c.next_run_at, schedules.c.name)
        )
        return list((await self._db.read(stmt)).scalars())

    async def next_run(self) -> datetime | None:
        stmt = select(func.min(schedules.c.next_run_at)).where(~schedules.c.paused)
        found: datetime | None = (await self._db.read(stmt)).scalar()
        return found

    def _insert(self) -> Any:
        dialect: Any = postgresql if self._dialect == "postgresql" else sqlite
        insert: Insert = dialect.insert(schedules)
        return insert
