"""Jobs made ahead of the `workers` benchmark, each side through its own public API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.application import NewJob, OrchestrationEngine
from chute.domain import SourceType

BATCH = 1000


async def defer_chute(url: str, count: int, folder: Path) -> float:
    """Create `count` pending jobs with `create_jobs`, 1,000 a call; the seconds it took."""
    database = SqlDatabase(create_engine_for(url))
    engine = OrchestrationEngine(
        uow=database,
        files=LocalFileStore(folder),
        detectors={},
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )
    started = time.monotonic()
    try:
        for first in range(0, count, BATCH):
            jobs = [
                NewJob(
                    source_type=SourceType.URL,
                    source_uri=f"https://example.org/{n}",
                    metadata={"n": n},
                )
                for n in range(first, min(first + BATCH, count))
            ]
            await engine.create_jobs(jobs)
        return time.monotonic() - started
    finally:
        await database.dispose()


async def defer_procrastinate(dsn: str, count: int) -> float:
    """Apply procrastinate's schema and defer `count` no-op jobs, 1,000 a call; the seconds
    the deferring took. The task is named, as a client that does not import it would."""
    from procrastinate import App, PsycopgConnector  # only with the `bench` extra

    app = App(connector=PsycopgConnector(conninfo=dsn))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        started = time.monotonic()
        for first in range(0, count, BATCH):
            args: list[dict[str, Any]] = [{"n": n} for n in range(first, min(first + BATCH, count))]
            await app.configure_task("noop").batch_defer_async(*args)
        return time.monotonic() - started
