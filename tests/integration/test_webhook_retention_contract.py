"""The purge of settled webhook deliveries on every database (memory, SQLite, PostgreSQL):
deliveries delivered or given up before the retention go, batch by batch; recent ones
stay, and so does every delivery still to send, however old."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import ManualClock
from chute.application import OrchestrationEngine, ValidationFailed
from chute.application.ports import UnitOfWork, UnitOfWorkFactory
from chute.domain import WebhookDelivery

from tests.factories import make_engine
from tests.integration.conftest import empty_tables

NOW = datetime(2026, 6, 30, 12, 0, 0, tzinfo=UTC)
RETENTION = timedelta(days=7)
CUTOFF = NOW - RETENTION
OLD, RECENT = CUTOFF - timedelta(seconds=1), CUTOFF + timedelta(seconds=1)
LONG_AGO = NOW - timedelta(days=60)
HOOK = uuid4()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def engine(database: UnitOfWorkFactory, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(uow=database, clock=clock)


def delivery(**fields: Any) -> WebhookDelivery:
    """A delivery to `HOOK`, made long ago, in the state `fields` give."""
    return WebhookDelivery(
        **{
            "id": uuid4(),
            "webhook_id": HOOK,
            "event_type": "job.completed",
            "job_id": uuid4(),
            "created_at": LONG_AGO,
        }
        | fields
    )


def delivered(at: datetime) -> WebhookDelivery:
    return delivery(attempts=1, last_status_code=204, delivered_at=at)


def given_up(at: datetime) -> WebhookDelivery:
    return delivery(attempts=20, last_status_code=500, last_error="given up", given_up_at=at)


def still_to_send(**fields: Any) -> WebhookDelivery:
    return delivery(next_attempt_at=NOW + timedelta(minutes=5), **fields)


async def seed(database: UnitOfWorkFactory, deliveries: list[WebhookDelivery]) -> None:
    async with database() as uow:
        await uow.deliveries.add(deliveries)
        await uow.commit()


async def kept(database: UnitOfWorkFactory) -> set[UUID]:
    async with database(read_only=True) as uow:
        return {d.id for d in await uow.deliveries.latest(HOOK, 10_000)}


async def test_settled_deliveries_older_than_the_retention_go_and_the_rest_stay(
    engine: OrchestrationEngine, database: UnitOfWorkFactory
) -> None:
    old = [delivered(OLD), given_up(OLD), delivered(LONG_AGO), given_up(LONG_AGO)]
    recent = [delivered(RECENT), given_up(RECENT), delivered(NOW)]
    live = [
        still_to_send(),  # never tried, made two months ago
        still_to_send(attempts=5, last_status_code=503, last_error="answered 503"),
        still_to_send(attempts=2, lease_expires_at=NOW + timedelta(seconds=30)),  # held
        delivery(next_attempt_at=LONG_AGO),  # due long ago, still waiting for a sender
    ]
    await seed(database, old + recent + live)

    assert await engine.purge_webhook_deliveries(RETENTION) == len(old)

    assert await kept(database) == {d.id for d in recent + live}
    assert await engine.purge_webhook_deliveries(RETENTION) == 0  # nothing more to do


async def test_a_delivery_still_to_send_stays_whatever_its_settled_times_say(
    engine: OrchestrationEngine, database: UnitOfWorkFactory
) -> None:
    # Not a state chute writes: the repository must still refuse what a sender may take.
    odd = still_to_send(delivered_at=LONG_AGO, given_up_at=LONG_AGO)
    await seed(database, [odd])

    assert await engine.purge_webhook_deliveries(timedelta(0)) == 0
    assert await kept(database) == {odd.id}


async def test_the_repository_deletes_at_most_limit_deliveries(
    database: UnitOfWorkFactory,
) -> None:
    await seed(database, [delivered(OLD) for _ in range(7)] + [still_to_send()])
    async with database() as uow:
        assert await uow.deliveries.purge_settled(CUTOFF, 3) == 3
        assert await uow.deliveries.purge_settled(CUTOFF, 3) == 3
        assert await uow.deliveries.purge_settled(CUTOFF, 3) == 1
        assert await uow.deliveries.purge_settled(CUTOFF, 3) == 0
        await uow.commit()
    assert len(await kept(database)) == 1


async def test_a_purge_not_committed_deletes_nothing(database: UnitOfWorkFactory) -> None:
    old = [delivered(OLD), given_up(OLD)]
    await seed(database, old)
    async with database() as uow:
        assert await uow.deliveries.purge_settled(CUTOFF, 10) == 2
        assert await uow.deliveries.latest(HOOK, 10) == []  # it sees its own deletes
    assert await kept(database) == {d.id for d in old}


class CountingWrites:
    """A unit-of-work factory that counts the write units of work it makes."""

    def __init__(self, database: UnitOfWorkFactory) -> None:
        self.database, self.writes = database, 0

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> UnitOfWork:
        self.writes += not read_only
        return self.database(read_only=read_only, deferred=deferred)


@pytest.mark.parametrize(("count", "transactions"), [(25, 3), (20, 3), (3, 1), (0, 1)])
async def test_the_purge_goes_batch_by_batch_until_a_short_one_and_counts_them_all(
    database: UnitOfWorkFactory, clock: ManualClock, count: int, transactions: int
) -> None:
    await seed(database, [given_up(OLD) for _ in range(count)] + [delivered(RECENT)])
    counting = CountingWrites(database)
    engine = make_engine(uow=counting, clock=clock)

    assert await engine.purge_webhook_deliveries(RETENTION, batch=10) == count

    assert counting.writes == transactions  # 10, 10, 5 / 10, 10, 0 / 3 / 0
    assert len(await kept(database)) == 1


async def test_the_purge_logs_one_line_with_the_total(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(database, [delivered(OLD) for _ in range(5)])
    with caplog.at_level(logging.INFO, logger="chute.engine"):
        await engine.purge_webhook_deliveries(RETENTION, batch=2)
    lines = [r for r in caplog.records if r.getMessage() == "webhook_deliveries.purged"]
    assert [r.__dict__["count"] for r in lines] == [5]


@pytest.mark.parametrize(
    ("older_than", "batch", "field"),
    [
        (timedelta(seconds=-1), 10, "older_than"),
        (RETENTION, 0, "batch"),
        (RETENTION, 10_001, "batch"),
    ],
)
async def test_a_bad_argument_is_refused_before_anything_goes(
    engine: OrchestrationEngine,
    database: UnitOfWorkFactory,
    older_than: timedelta,
    batch: int,
    field: str,
) -> None:
    await seed(database, [delivered(OLD)])
    with pytest.raises(ValidationFailed) as refused:
        await engine.purge_webhook_deliveries(older_than, batch=batch)
    assert [p.loc for p in refused.value.errors] == [(field,)]
    assert len(await kept(database)) == 1


@pytest.fixture
async def postgres(migrated_postgres_url: str) -> AsyncIterator[list[SqlDatabase]]:
    """Two clients of one emptied PostgreSQL database."""
    clients = [SqlDatabase(create_engine_for(migrated_postgres_url)) for _ in range(2)]
    try:
        await empty_tables(clients[0])
        yield clients
    finally:
        for client in clients:
            await client.dispose()


async def test_on_postgresql_rows_another_transaction_holds_are_skipped_not_waited_for(
    postgres: list[SqlDatabase],
) -> None:
    sender, purger = postgres
    held, free = delivered(OLD), [delivered(OLD) for _ in range(3)]
    await seed(sender, [held, *free])
    async with sender() as uow:
        await uow.deliveries.update_many([held])  # its row is locked until this one ends
        async with purger() as other:
            count = await asyncio.wait_for(other.deliveries.purge_settled(CUTOFF, 10), 5)
            await other.commit()
        assert count == len(free)
        await uow.commit()
    assert await kept(sender) == {held.id}
