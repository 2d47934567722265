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


class Timer:
    """The rate of the calls after the first: each side's first call opens connections,
    prepares statements and builds its own caches (chute's engine connects on first use,
    procrastinate's app was opened before), so it is a warm-up, not the steady rate.
    With one call only (`--quick`), that call."""

    def __init__(self) -> None:
        self._started, self._from = 0.0, 0

    def call(self, first: int) -> None:
        """Note the start of the call that makes jobs from number `first` on."""
        if first in (0, BATCH):
            self._started, self._from = time.monotonic(), first

    def rate(self, count: int) -> float:
        """Jobs a second of the timed calls, once `count` jobs are made."""
        return (count - self._from) / (time.monotonic() - self._started)


async def defer_chute(url: str, count: int, folder: Path) -> float:
    """Create `count` pending jobs with `create_jobs`, 1,000 a call; jobs a second after
    the first call (`Timer`)."""
    database = SqlDatabase(create_engine_for(url))
    engine = OrchestrationEngine(
        uow=database,
        files=LocalFileStore(folder),
        detectors={},
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )
    timer = Timer()
    try:
        for first in range(0, count, BATCH):
            timer.call(first)
            jobs = [
                NewJob(
                    source_type=SourceType.URL,
                    source_uri=f"https://example.org/{n}",
                    metadata={"n": n},
                )
                for n in range(first, min(first + BATCH, count))
            ]
            await engine.create_jobs(jobs)
        return timer.rate(count)
    finally:
        await database.dispose()


async def defer_procrastinate(dsn: str, count: int) -> float:
    """Apply procrastinate's schema and defer `count` no-op jobs, 1,000 a call; jobs a
    second after the first call (`Timer`). The task is named, as a client that does not
    import it would."""
    from procrastinate import App, PsycopgConnector  # only with the `bench` extra

    app = App(connector=PsycopgConnector(conninfo=dsn))
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        timer = Timer()
        for first in range(0, count, BATCH):
            timer.call(first)
            args: list[dict[str, Any]] = [{"n": n} for n in range(first, min(first + BATCH, count))]
            await app.configure_task("noop").batch_defer_async(*args)
        return timer.rate(count)
