"""The rescuer of `chute serve`: takes back jobs whose worker's lease ended, periodically."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import cast

from chute.application import OrchestrationEngine
from chute.entrypoints.container import Container

log = logging.getLogger("chute.rescuer")

RESCUE_BATCH = 100  # jobs per transaction


async def _engine(container: Container) -> OrchestrationEngine:
    engine: object = container.engine()
    if inspect.isawaitable(engine):  # an async resource (the SQL engine) makes it async
        engine = await engine
    return cast(OrchestrationEngine, engine)  # or a test's stand-in


async def rescue_periodically(container: Container, interval: float) -> None:
    """Every `interval` seconds, rescue expired leases until none are left; forever.

    The first round comes one interval after start-up. The engine is looked up each
    round, so that a test's override of the container is honoured. A failed round is
    logged and the next one comes as usual: a database that is away for a while must
    not end the rescues for the life of the process.
    """
    while True:
        await asyncio.sleep(interval)
        try:
            engine = await _engine(container)
            while len(await engine.rescue_expired_leases(limit=RESCUE_BATCH)) == RESCUE_BATCH:
                pass  # a full batch: more may be waiting
        except Exception:
            log.exception("rescue.failed")


@contextlib.asynccontextmanager
async def rescuing(container: Container, interval: float) -> AsyncIterator[asyncio.Task[None]]:
    """Run `rescue_periodically` in the background; cancel it and wait for it on exit."""
    task = asyncio.create_task(rescue_periodically(container, interval), name="chute-rescuer")
    try:
        yield task
    finally:
        task.cancel()
        # `wait`, not `await task`: the task's cancellation is not ours to raise, and
        # a cancellation of this task itself still comes through.
        await asyncio.wait([task])
