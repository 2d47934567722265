"""The background duties of `chute serve`: rescue expired leases, sweep orphan files,
run the ticks of schedules, send webhook deliveries and purge the settled ones.

All run in every API process and are safe to run in many at once: a rescue locks the
jobs it takes back (SKIP LOCKED), the sweep removes only folders that no job refers to
and that are older than a grace period, and a schedule's tick is taken by one process
(the engine locks the schedule and moves its next run on in the job's transaction).
A webhook delivery is sent by one process at a time: each takes due ones under a lease,
skipping those another holds; the purge of settled ones skips rows a sender locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from chute.adapters.webhooks import HttpWebhookSender
from chute.application import OrchestrationEngine
from chute.domain import Job
from chute.entrypoints.bootstrap import Container, engine_of
from chute.entrypoints.http.schemas.jobs import JobResponse

log = logging.getLogger("chute.maintenance")

RESCUE_BATCH = 100  # jobs per transaction
WEBHOOK_PURGE_INTERVAL = 3600.0  # seconds: settled deliveries are purged hourly


async def rescue(engine: OrchestrationEngine) -> None:
    """Rescue expired leases until none are left."""
    while len(await engine.rescue_expired_leases(limit=RESCUE_BATCH)) == RESCUE_BATCH:
        pass  # a full batch: more may be waiting


async def periodically(
    name: str,
    container: Container,
    duty: Callable[[OrchestrationEngine], Awaitable[object]],
    interval: float,
    *,
    at_start: bool = False,
) -> None:
    """Run `duty` every `interval` seconds, forever (also at once when `at_start`).

    The engine is looked up each round, so that a test's override of the container is
    honoured. A failed round is logged and the next one comes as usual: a database
    that is away for a while must not end the duty for the life of the process.
    """
    if not at_start:
        await asyncio.sleep(interval)
    while True:
        try:
            await duty(await engine_of(container))
        except Exception:
            log.exception(f"{name}.failed")
        await asyncio.sleep(interval)


async def run_schedules(container: Container, interval: float) -> None:
    """Run the due ticks of schedules, forever: again at the next tick this process
    knows of, and at least every `interval` seconds (so that schedules another process
    created or changed are seen). A failed round is logged, as in `periodically`."""
    while True:
        next_run = None
        try:
            next_run = await (await engine_of(container)).run_due_schedules()
        except Exception:
            log.exception("schedules.failed")
        delay = interval
        if next_run is not None:
            until = (next_run - container.clock().now()).total_seconds()
            delay = min(interval, max(0.0, until))
        await asyncio.sleep(delay)


def job_json(job: Job) -> object:
    """A job as `GET /api/v1/jobs/{id}` answers it: the `data` of a webhook payload."""
    return JobResponse.of(job).model_dump(mode="json")


async def send_webhooks(container: Container, interval: float) -> None:
    """Send due webhook deliveries, forever: batch after batch while full ones come,
    else again after `interval` seconds. A failed round is logged, as in `periodically`.
    The sender's kept-alive connections are closed when the duty ends."""
    try:
        await _send_webhooks(container, interval)
    finally:
        sender = container.webhook_sender()
        if isinstance(sender, HttpWebhookSender):  # a test may put another in its place
            await sender.aclose()


async def _send_webhooks(container: Container, interval: float) -> None:
    while True:
        try:
            engine = await engine_of(container)
            full = await engine.deliver_webhooks(job_json) >= engine.webhook_policy.batch
        except Exception:
            log.exception("webhooks.failed")
            full = False
        if not full:
            await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def maintaining(container: Container) -> AsyncIterator[None]:
    """Rescue, sweep, run schedules, send webhooks and purge settled deliveries in the
    background; cancel them and wait for them on exit."""
    config = container.config
    grace = timedelta(seconds=config.orphan_grace_seconds())
    retention = timedelta(seconds=config.webhook_retention_seconds())

    async def sweep(engine: OrchestrationEngine) -> None:
        await engine.sweep_orphans(grace=grace)

    async def purge_deliveries(engine: OrchestrationEngine) -> None:
        await engine.purge_webhook_deliveries(older_than=retention)

    tasks = [
        asyncio.create_task(periodically(
            "rescue", container, rescue, config.rescue_interval_seconds()), name="chute-rescue"),
        asyncio.create_task(periodically(
            "sweep", container, sweep, config.sweep_interval_seconds(), at_start=True),
            name="chute-sweep"),
        asyncio.create_task(
            run_schedules(container, config.schedule_interval_seconds()), name="chute-schedules"),
        asyncio.create_task(
            send_webhooks(container, config.webhook_interval_seconds()), name="chute-webhooks"),
        asyncio.create_task(periodically(
            "webhook_purge", container, purge_deliveries, WEBHOOK_PURGE_INTERVAL, at_start=True),
            name="chute-webhook-purge"),
    ]  # fmt: skip
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        # `wait`, not `await`: their cancellation is not ours to raise, and a
        # cancellation of this task itself still comes through.
        await asyncio.wait(tasks)
