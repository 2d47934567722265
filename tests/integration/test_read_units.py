"""Read-only units of work on PostgreSQL run without a transaction: under READ COMMITTED
each statement takes its own snapshot in a transaction or out of one, so BEGIN and
ROLLBACK would be two round trips a read for nothing."""

from __future__ import annotations

import pytest
from chute.adapters.sqlalchemy import SqlDatabase
from chute.application.queries import JobFilter, JobQuery

from tests.factories import make_job


async def _in_transaction(uow: object) -> bool:
    conn = uow._conn  # type: ignore[attr-defined]
    raw = await conn.get_raw_connection()
    return bool(raw.driver_connection.is_in_transaction())


@pytest.mark.parametrize("sql_database_url", ["postgresql"], indirect=True)
async def test_a_read_unit_opens_no_transaction_and_a_write_unit_does(
    sql_database: SqlDatabase,
) -> None:
    postgres = sql_database
    job = make_job()
    async with postgres() as uow:
        await uow.jobs.add([job])
        assert await _in_transaction(uow)
        await uow.commit()
    async with postgres(read_only=True) as uow:
        found = await uow.jobs.find(JobQuery(filter=JobFilter(), limit=50))
        assert job.id in [j.id for j in found]
        assert await uow.jobs.count(JobFilter()) >= 1
        assert not await _in_transaction(uow)
    # The connection goes back to the pool as it came: the next write unit is a
    # transaction again.
    async with postgres() as uow:
        assert await uow.jobs.get(job.id, for_update=True) is not None
        assert await _in_transaction(uow)
