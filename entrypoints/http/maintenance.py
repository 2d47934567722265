"""The background duties of `chute serve`: rescue expired leases, sweep orphan files.

Both run in every API process and are safe to run in many at once: a rescue locks the
jobs it takes back (SKIP LOCKED), and the sweep removes only folders that no job
refers to and that are older than a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from chute.application import OrchestrationEngine
from chute.entrypoints.bootstrap import Container, engine_of

log = logging.getLogger("chute.maintenance")

RESCUE_BATCH = 100  # jobs per transaction


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


@contextlib.asynccontextmanager
async def maintaining(container: Container) -> AsyncIterator[None]:
    """Rescue and sweep in the background; cancel both and wait for them on exit."""
    config = container.config
    grace = timedelta(seconds=config.orphan_grace_seconds())

    async def sweep(engine: OrchestrationEngine) -> None:
        await engine.sweep_orphans(grace=grace)

    tasks = [
        asyncio.create_task(periodically(
            "rescue", container, rescue, config.rescue_interval_seconds()), name="chute-rescue"),
        asyncio.create_task(periodically(
            "sweep", container, sweep, config.sweep_interval_seconds(), at_start=True),
            name="chute-sweep"),
    ]  # fmt: skip
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        # `wait`, not `await`: their cancellation is not ours to raise, and a
        # cancellation of this task itself still comes through.
        await asyncio.wait(tasks)
