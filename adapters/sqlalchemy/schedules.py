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
from sqlalchemy import Insert, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

_SAVE_RUNS = update(schedules).where(schedules.c.name == bindparam("key"))


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

    async def save_runs(self, schedules_: Sequence[Schedule]) -> None:
        if not schedules_:
            return
        rows = [
            {"key": s.name, "next_run_at": s.next_run_at, "last_run_at": s.last_run_at}
            for s in schedules_
        ]
        result = await self._db.write(_SAVE_RUNS, rows)  # one executemany
        if result.supports_sane_multi_rowcount() and result.rowcount != len(rows):
            raise ValueError("runs not saved: some schedules do not exist")

    async def delete(self, name: str) -> bool:
        stmt = delete(schedules).where(schedules.c.name == name)
        return bool((await self._db.write(stmt)).rowcount)

    async def take_due(self, now: datetime, limit: int) -> Sequence[Schedule]:
        c = schedules.c
        stmt = (
            select(schedules)
            .where(~c.paused, c.next_run_at <= now)
            .order_by(c.next_run_at, c.name)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            # Another server taking a tick holds its row: leave it to that one, as
            # claims do with jobs. SQLite's write transaction holds the whole file.
            stmt = stmt.with_for_update(skip_locked=True)
        return [to_schedule(row) for row in (await self._db.write(stmt)).mappings()]

    async def next_run(self) -> datetime | None:
        stmt = select(func.min(schedules.c.next_run_at)).where(~schedules.c.paused)
        found: datetime | None = (await self._db.read(stmt)).scalar()
        return found

    def _insert(self) -> Any:
        dialect: Any = postgresql if self._dialect == "postgresql" else sqlite
        insert: Insert = dialect.insert(schedules)
        return insert
