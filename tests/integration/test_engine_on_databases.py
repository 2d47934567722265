"""The use cases of OrchestrationEngine on every database: memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import UuidV7Generator
from chute.application import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    JobFilter,
    JobNotFound,
    OrchestrationEngine,
    ServiceUnavailable,
    Submission,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.domain import JobStatus, Mode, Priority

from tests.factories import make_engine, make_new_job
from tests.pg import free_port

S = JobStatus


@pytest.fixture
def engine(database: UnitOfWorkFactory) -> OrchestrationEngine:
    return make_engine(uow=database)


async def total(engine: OrchestrationEngine) -> int:
    page = await engine.list_jobs(limit=1)
    assert page.total is not None
    return page.total


async def test_a_created_job_is_read_back_whole(engine: OrchestrationEngine) -> None:
    made = await engine.create_job(
        make_new_job(
            file_name="r.pdf",
            file_size=10,
            mime_type="Application/PDF",
            priority=Priority.HIGH,
            mode=Mode.FAST,
            metadata={"tenant": "acme", "tags": ["ü", 1]},
            max_attempts=5,
        )
    )
    found = await engine.get_job(made.job.id)
    assert not made.replayed
    assert (found.status, found.priority, found.mode) == (S.PENDING, Priority.HIGH, Mode.FAST)
    assert found.mime_type == "application/pdf"
    assert found.metadata == {"tenant": "acme", "tags": ["ü", 1]}
    assert found.created_at == made.job.created_at and found.detection is None
    with pytest.raises(JobNotFound):
        await engine.get_job(UuidV7Generator().new_id())


async def test_get_jobs_reads_many_in_the_order_asked_and_leaves_out_the_unknown(
    engine: OrchestrationEngine,
) -> None:
    made = [(await engine.create_job(make_new_job())).job for _ in range(3)]
    unknown = UuidV7Generator().new_id()
    asked = [made[2].id, unknown, made[0].id, made[1].id, made[0].id]
    found = await engine.get_jobs(asked)
    assert [job.id for job in found] == [made[2].id, made[0].id, made[1].id]
    assert found[0] == await engine.get_job(made[2].id)
    assert await engine.get_jobs([]) == []


async def test_a_batch_is_created_whole_or_not_at_all(engine: OrchestrationEngine) -> None:
    bad = [make_new_job(), make_new_job(source_uri="ftp://example.org/x")]
    with pytest.raises(ValidationFailed):
        await engine.create_jobs(bad)
    assert await total(engine) == 0
    uris = [f"https://a.org/{i}" for i in range(5)]
    made = await engine.create_jobs([make_new_job(source_uri=uri) for uri in uris])
    found = await engine.list_jobs(limit=10)
    assert [job.source_uri for job in made.jobs] == uris
    assert {job.id for job in found.items} == {job.id for job in made.jobs}


async def test_an_idempotency_key_replays_its_request_and_refuses_another(
    engine: OrchestrationEngine,
) -> None:
    first = await engine.create_job(make_new_job(), idempotency_key="key-1")
    again = await engine.create_job(make_new_job(), idempotency_key="key-1")
    assert again.replayed and again.job.id == first.job.id
    with pytest.raises(IdempotencyKeyReused):
        await engine.create_job(make_new_job(source_uri="https://b.org/"), idempotency_key="key-1")
    assert await total(engine) == 1


async def test_concurrent_requests_with_one_key_never_make_two_jobs(
    engine: OrchestrationEngine,
) -> None:
    async def attempt() -> Submission | None:
        try:
            return await engine.create_job(make_new_job(), idempotency_key="same")
        except IdempotencyKeyInUse:
            return None

    answers = [a for a in await asyncio.gather(*(attempt() for _ in range(20))) if a]
    assert await total(engine) == 1
    assert len({answer.job.id for answer in answers}) == 1
    assert sum(not answer.replayed for answer in answers) == 1


async def test_cancel_and_retry_are_persisted(engine: OrchestrationEngine) -> None:
    pending = (await engine.create_job(make_new_job())).job
    running = (await engine.create_job(make_new_job())).job
    await engine.update_job_status(running.id, S.RUNNING)

    assert (await engine.cancel_job(pending.id)).job.status is S.CANCELLED
    assert (await engine.cancel_job(running.id)).job.status is S.CANCELLING
    assert (await engine.get_job(pending.id)).status is S.CANCELLED
    assert (await engine.get_job(running.id)).status is S.CANCELLING

    retried = await engine.retry_job(pending.id)
    found = await engine.get_job(pending.id)
    assert retried.status is found.status is S.PENDING
    assert found.finished_at is None and found.updated_at == retried.updated_at


async def test_list_jobs_walks_every_job_by_cursor(engine: OrchestrationEngine) -> None:
    made = [(await engine.create_job(make_new_job())).job for _ in range(7)]
    page = await engine.list_jobs(limit=3)
    seen = list(page.items)
    assert page.total == 7
    while page.next_cursor:
        await engine.create_job(make_new_job(source_uri="https://late.org/"))  # newer: not shown
        page = await engine.list_jobs(limit=3, cursor=page.next_cursor, count=False)
        seen += page.items
    assert [job.id for job in seen] == [job.id for job in reversed(made)]
    pending = JobFilter(statuses=frozenset({S.PENDING}))
    assert (await engine.list_jobs(filter=pending, limit=1)).total == 9


async def test_list_total_is_capped_and_says_so(database: UnitOfWorkFactory) -> None:
    engine = make_engine(uow=database, count_cap=4)
    await engine.create_jobs([make_new_job(priority=Priority.HIGH) for _ in range(6)])
    await engine.create_jobs([make_new_job() for _ in range(3)])

    capped = await engine.list_jobs(limit=2)
    high = await engine.list_jobs(filter=JobFilter(priorities=frozenset({Priority.HIGH})))
    normal = await engine.list_jobs(filter=JobFilter(priorities=frozenset({Priority.NORMAL})))
    uncounted = await engine.list_jobs(count=False)

    assert (capped.total, capped.total_exact, len(capped.items)) == (4, False, 2)
    assert (high.total, high.total_exact, len(high.items)) == (4, False, 6)
    assert (normal.total, normal.total_exact, len(normal.items)) == (3, True, 3)
    assert (uncounted.total, uncounted.total_exact, len(uncounted.items)) == (None, None, 9)
    four = await engine.create_jobs([make_new_job(mode=Mode.FAST) for _ in range(4)])
    fast = await engine.list_jobs(filter=JobFilter(modes=frozenset({Mode.FAST})))
    assert (fast.total, fast.total_exact, len(four.jobs)) == (4, True, 4)  # at the cap: exact


async def test_many_concurrent_creates_all_succeed(engine: OrchestrationEngine) -> None:
    uris = [f"https://example.org/{i}" for i in range(200)]
    made = await asyncio.gather(*(engine.create_job(make_new_job(source_uri=u)) for u in uris))
    assert len({m.job.id for m in made}) == 200
    assert await total(engine) == 200


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:////nonexistent-folder/chute.db",
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/chute",
    ],
    ids=["sqlite", "postgresql"],
)
async def test_an_unreachable_database_is_service_unavailable(url: str) -> None:
    database = SqlDatabase(create_engine_for(url))
    try:
        with pytest.raises(ServiceUnavailable):
            await make_engine(uow=database).check_ready()
        with pytest.raises(ServiceUnavailable):
            await make_engine(uow=database).create_job(make_new_job())
    finally:
        await database.dispose()
