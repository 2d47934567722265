"""Webhooks on every database (memory, SQLite, PostgreSQL): one contract.

A status change writes one delivery per webhook that asks for its event type and whose
filter selects the job, in the transaction of the change (a rolled-back use case leaves
none); senders take due deliveries one sender at a time; a failed attempt is retried
after about the base delay, doubling, at most an hour apart, until a day has passed,
and then given up.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from uuid import uuid4

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import ManualClock
from chute.application import (
    JobFilter,
    OrchestrationEngine,
    SendResult,
    WebhookNotFound,
    WebhookPolicy,
)
from chute.application.ports import UnitOfWork, UnitOfWorkFactory
from chute.application.telemetry import NoTelemetry
from chute.application.use_cases import base
from chute.domain import Job, WebhookDelivery
from chute.domain.webhooks import retry_delay

from tests.factories import make_engine, make_new_job
from tests.webhooks import ScriptedSender

START = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
BASE = 5.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sender() -> ScriptedSender:
    return ScriptedSender()


@pytest.fixture
def engine(
    database: UnitOfWorkFactory, clock: ManualClock, sender: ScriptedSender
) -> OrchestrationEngine:
    return make_engine(
        uow=database,
        clock=clock,
        webhook_sender=sender,
        webhook_policy=WebhookPolicy(retry_base_seconds=BASE, batch=10),
    )


def render(job: Job) -> dict[str, Any]:
    return {"id": str(job.id), "status": job.status.value}


async def deliveries(engine: OrchestrationEngine, webhook_id: Any) -> list[WebhookDelivery]:
    return await engine.list_webhook_deliveries(webhook_id)


async def test_a_change_writes_deliveries_for_the_webhooks_that_ask_for_it_only(
    engine: OrchestrationEngine,
) -> None:
    finals = await engine.create_webhook("https://example.org/finals")
    created_reports = await engine.create_webhook(
        "https://example.org/reports",
        events=["job.created"],
        filter=JobFilter(queues=frozenset({"reports"})),
    )
    running_acme = await engine.create_webhook(
        "https://example.org/acme",
        events=["job.running", "job.completed"],
        filter=JobFilter(metadata=(("tenant", "acme"),)),
    )
    report = (await engine.create_job(make_new_job(queue="reports"))).job
    acme = (await engine.create_job(make_new_job(metadata={"tenant": "acme"}))).job

    (claimed,) = await engine.claim_jobs("w1", limit=1, filter=None)
    await engine.complete_job(claimed.id, "w1")
    (second,) = await engine.claim_jobs("w1", limit=1)
    await engine.complete_job(second.id, "w1")

    assert {(d.event_type, d.job_id) for d in await deliveries(engine, finals.id)} == {
        ("job.completed", report.id),
        ("job.completed", acme.id),
    }
    assert [(d.event_type, d.job_id) for d in await deliveries(engine, created_reports.id)] == [
        ("job.created", report.id)
    ]
    assert sorted(d.event_type for d in await deliveries(engine, running_acme.id)) == [
        "job.completed",
        "job.running",
    ]
    assert {d.job_id for d in await deliveries(engine, running_acme.id)} == {acme.id}
    newest_first = await deliveries(engine, finals.id)
    assert [d.created_at for d in newest_first] == sorted(
        (d.created_at for d in newest_first), reverse=True
    )


class _CrashBeforeCommit:
    """A unit of work whose commit fails: the use case is rolled back."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __aenter__(self) -> Self:
        await self._uow.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._uow.__aexit__(et, e, tb)

    async def commit(self) -> None:
        raise RuntimeError("the process died before COMMIT")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._uow, name)


async def test_a_rolled_back_change_leaves_no_delivery(
    engine: OrchestrationEngine, database: UnitOfWorkFactory, clock: ManualClock
) -> None:
    hook = await engine.create_webhook("https://example.org/all", events=["job.cancelled"])
    job = (await engine.create_job(make_new_job())).job

    def crashing(*, read_only: bool = False, deferred: bool = False) -> Any:
        uow = database(read_only=read_only, deferred=deferred)
        return uow if read_only else _CrashBeforeCommit(uow)

    broken = make_engine(uow=crashing, clock=clock, webhook_sender=ScriptedSender())
    with pytest.raises(RuntimeError, match="before COMMIT"):
        await broken.cancel_job(job.id)

    assert (await engine.get_job(job.id)).status.value == "pending"
    assert await deliveries(engine, hook.id) == []
    await engine.cancel_job(job.id)  # the same change, committed this time
    assert [d.event_type for d in await deliveries(engine, hook.id)] == ["job.cancelled"]


async def test_two_senders_claiming_at_once_never_take_the_same_delivery(
    engine: OrchestrationEngine, database_url: str | None, database: UnitOfWorkFactory
) -> None:
    await engine.create_webhook("https://example.org/a", events=["job.created"])
    await engine.create_jobs([make_new_job() for _ in range(30)])
    second: UnitOfWorkFactory = (
        database if database_url is None else SqlDatabase(create_engine_for(database_url))
    )
    now = START + timedelta(seconds=1)
    lease = now + timedelta(seconds=60)

    async def claim(db: UnitOfWorkFactory) -> set[Any]:
        taken: set[Any] = set()
        for _ in range(5):
            async with db() as uow:
                found = await uow.deliveries.claim_due(now, lease, 4)
                await asyncio.sleep(0.02)  # hold the rows while the other claims
                await uow.commit()
            taken |= {d.id for d in found}
        return taken

    try:
        first, other = await asyncio.gather(claim(database), claim(second))
    finally:
        if isinstance(second, SqlDatabase):
            await second.dispose()
    assert not first & other
    assert len(first | other) == 30  # 2 senders x 5 rounds x 4 = 40 tries, 30 rows
    async with database() as uow:  # all leased: none is due again before the lease ends
        assert await uow.deliveries.claim_due(now, lease, 100) == []
        assert len(await uow.deliveries.claim_due(lease, lease, 100)) == 30


async def test_engines_sending_at_once_send_each_delivery_once(
    database_url: str | None, database: UnitOfWorkFactory, clock: ManualClock
) -> None:
    senders = [ScriptedSender(delay=0.01), ScriptedSender(delay=0.01)]
    second: UnitOfWorkFactory = (
        database if database_url is None else SqlDatabase(create_engine_for(database_url))
    )
    policy = WebhookPolicy(batch=5)
    engines = [
        make_engine(uow=db, clock=clock, webhook_sender=s, webhook_policy=policy)
        for db, s in zip((database, second), senders, strict=True)
    ]
    await engines[0].create_webhook("https://example.org/a", events=["job.created"])
    await engines[0].create_jobs([make_new_job() for _ in range(40)])

    async def drain(engine: OrchestrationEngine) -> None:
        while await engine.deliver_webhooks(render):
            pass

    try:
        await asyncio.gather(*(drain(e) for e in engines))
    finally:
        if isinstance(second, SqlDatabase):
            await second.dispose()
    ids = [message_id for s in senders for _, message_id, _ in s.sent]
    assert len(ids) == len(set(ids)) == 40
    body = json.loads(senders[0].sent[0][2] if senders[0].sent else senders[1].sent[0][2])
    assert body["type"] == "job.created" and body["data"]["status"] == "pending"


async def test_failed_attempts_back_off_doubling_and_give_up_after_a_day(
    engine: OrchestrationEngine, sender: ScriptedSender, clock: ManualClock
) -> None:
    results: list[str] = []

    class Counting(NoTelemetry):
        def webhook_delivered(self, result: str) -> None:
            results.append(result)

    engine.telemetry = Counting()
    hook = await engine.create_webhook("https://example.org/down", events=["job.created"])
    await engine.create_job(make_new_job())
    sender.answer = SendResult(False, status_code=503, error="answered 503")

    gaps: list[float] = []
    while True:
        assert await engine.deliver_webhooks(render) == 1
        (delivery,) = await deliveries(engine, hook.id)
        if delivery.next_attempt_at is None:
            break
        gap = (delivery.next_attempt_at - clock.now()).total_seconds()
        gaps.append(gap)
        assert await engine.deliver_webhooks(render) == 0  # not due yet
        clock.advance(gap)

    # About 5 s, then doubling (each within the jitter of 0.8 to 1.2), at most an hour.
    for n, gap in enumerate(gaps[:6]):
        assert 0.8 * BASE * 2**n <= gap <= 1.2 * BASE * 2**n
    assert max(gaps) <= 3600 and gaps[-1] >= 0.8 * 3600
    given_up_at = clock.now()
    assert timedelta(hours=24) <= given_up_at - START < timedelta(hours=25)
    assert delivery.attempts == len(gaps) + 1 and delivery.delivered_at is None
    assert delivery.last_status_code == 503
    assert delivery.last_error == f"given up after {delivery.attempts} attempts: answered 503"
    assert delivery.given_up_at == given_up_at
    assert results == ["failed"] * len(gaps) + ["given_up"]
    clock.advance(7200)
    assert await engine.deliver_webhooks(render) == 0  # given up: never sent again


async def test_a_delivery_retried_after_a_failure_keeps_its_id_and_is_then_delivered(
    engine: OrchestrationEngine, sender: ScriptedSender, clock: ManualClock
) -> None:
    hook = await engine.create_webhook("https://example.org/flaky", events=["job.created"])
    await engine.create_job(make_new_job())
    sender.answer = SendResult(False, error="timed out after 10 s")
    await engine.deliver_webhooks(render)
    (failed,) = await deliveries(engine, hook.id)
    assert failed.last_error == "timed out after 10 s" and failed.last_status_code is None
    sender.answer = SendResult(True, status_code=200)
    assert failed.next_attempt_at is not None
    clock.advance((failed.next_attempt_at - clock.now()).total_seconds())
    await engine.deliver_webhooks(render)
    (done,) = await deliveries(engine, hook.id)
    assert (done.attempts, done.last_status_code, done.last_error) == (2, 200, None)
    assert done.delivered_at == clock.now() and done.next_attempt_at is None
    assert sender.sent[0][1] == sender.sent[1][1] == str(done.id)


async def test_deleting_a_webhook_deletes_its_deliveries_and_sends_nothing_more(
    engine: OrchestrationEngine, sender: ScriptedSender
) -> None:
    hook = await engine.create_webhook("https://example.org/gone", events=["job.created"])
    await engine.create_job(make_new_job())
    await engine.delete_webhook(hook.id)
    assert await engine.deliver_webhooks(render) == 0
    assert await engine.list_webhooks() == []


def test_the_retry_delay_doubles_from_the_base_and_stops_at_the_cap() -> None:
    delays = [retry_delay(n, base=5, cap=3600, jitter=1.0).total_seconds() for n in range(1, 14)]
    assert delays[:5] == [5, 10, 20, 40, 80]
    assert delays[-1] == 3600 and max(delays) == 3600
    assert retry_delay(1000, base=5, cap=3600, jitter=1.2).total_seconds() == 3600


async def test_a_webhook_registered_elsewhere_is_heard_within_the_cache_time(
    engine: OrchestrationEngine,
    database: UnitOfWorkFactory,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(base, "WEBHOOK_CACHE_SECONDS", 0.2)
    await engine.create_job(make_new_job())  # the engine has read the webhooks: none
    other = make_engine(uow=database, clock=clock, webhook_sender=ScriptedSender())
    hook = await other.create_webhook("https://example.org/late", events=["job.created"])
    await engine.create_job(make_new_job())
    await asyncio.sleep(0.25)
    heard = (await engine.create_job(make_new_job())).job
    assert [d.job_id for d in await deliveries(engine, hook.id)] == [heard.id]


async def test_a_paused_webhooks_deliveries_are_written_but_wait_for_its_resumption(
    engine: OrchestrationEngine, sender: ScriptedSender, clock: ManualClock
) -> None:
    hook = await engine.create_webhook("https://example.org/resting", events=["job.created"])
    other = await engine.create_webhook("https://example.org/awake", events=["job.created"])
    paused = await engine.pause_webhook(hook.id, True)
    assert paused.paused and (await engine.get_webhook(hook.id)).paused
    assert not (await engine.get_webhook(other.id)).paused
    jobs = []
    for _ in range(3):
        jobs.append((await engine.create_job(make_new_job())).job)
        clock.advance(1)

    # Written (the outbox keeps them), but only the other webhook's are sent.
    assert len(await deliveries(engine, hook.id)) == 3
    assert await engine.deliver_webhooks(render) == 3
    assert {url for url, _, _ in sender.sent} == {"https://example.org/awake"}
    clock.advance(3600)
    assert await engine.deliver_webhooks(render) == 0
    waiting = await deliveries(engine, hook.id)
    assert all(d.attempts == 0 and d.next_attempt_at is not None for d in waiting)

    resumed = await engine.pause_webhook(hook.id, False)
    assert not resumed.paused and not (await engine.get_webhook(hook.id)).paused
    sender.sent.clear()
    assert await engine.deliver_webhooks(render) == 3
    assert [json.loads(body)["data"]["id"] for _, _, body in sender.sent] == [
        str(job.id) for job in jobs
    ]  # oldest first
    assert all(d.delivered_at == clock.now() for d in await deliveries(engine, hook.id))


async def test_a_delivery_paused_past_a_day_is_tried_once_on_resumption_then_given_up(
    engine: OrchestrationEngine, sender: ScriptedSender, clock: ManualClock
) -> None:
    hook = await engine.create_webhook("https://example.org/long-rest", events=["job.created"])
    await engine.pause_webhook(hook.id)
    await engine.create_job(make_new_job())
    clock.advance(25 * 3600)
    assert await engine.deliver_webhooks(render) == 0
    await engine.pause_webhook(hook.id, False)
    sender.answer = SendResult(False, status_code=503, error="answered 503")
    assert await engine.deliver_webhooks(render) == 1
    (delivery,) = await deliveries(engine, hook.id)
    assert delivery.attempts == 1 and delivery.given_up_at == clock.now()
    assert delivery.next_attempt_at is None


async def test_pausing_or_resuming_an_unknown_webhook_is_not_found(
    engine: OrchestrationEngine,
) -> None:
    missing = uuid4()
    for paused in (True, False):
        with pytest.raises(WebhookNotFound):
            await engine.pause_webhook(missing, paused)
    assert await engine.list_webhooks() == []
