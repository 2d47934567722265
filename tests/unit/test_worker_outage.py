"""The in-process Worker when its database is away while it reports: on the in-memory
adapters behind a unit of work that fails for a while, with the real clock."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import pytest
from chute.adapters.memory import MemoryDatabase, MemoryFileStore
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.application import NewJob, OrchestrationEngine, ServiceUnavailable
from chute.application.ports import UnitOfWork
from chute.application.reports import Reporter
from chute.application.worker import JobContext, JobFailed, Worker
from chute.domain import Job, JobStatus, SourceType

SLOTS = 3


class Outage:
    """The in-memory database, away while `away` is set: every unit of work then fails
    to begin with `ServiceUnavailable`, as the SQL adapters' do."""

    def __init__(self) -> None:
        self.database = MemoryDatabase()
        self.away = False
        self.refused = 0  # units of work refused so far

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> UnitOfWork:
        if self.away:
            self.refused += 1
            return Away()  # type: ignore[return-value]
        return self.database(read_only=read_only, deferred=deferred)


class Away:
    async def __aenter__(self) -> Away:
        raise ServiceUnavailable("the database cannot be reached: ConnectionRefusedError")

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class Monotonic:
    """The worker's monotonic clock, which a test can move on (the lease ends sooner)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock, self.ahead = clock, 0.0

    def __call__(self) -> float:
        return self.clock() + self.ahead


@pytest.fixture
def outage() -> Outage:
    return Outage()


@pytest.fixture
def engine(outage: Outage) -> OrchestrationEngine:
    return OrchestrationEngine(
        uow=outage,
        files=MemoryFileStore(),
        detectors={},
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )


@pytest.fixture
async def unretrieved() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop reports about tasks (an exception never retrieved), collected
    once the test's tasks are garbage: it must stay empty."""
    loop = asyncio.get_running_loop()
    found: list[dict[str, Any]] = []
    handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: found.append(context))
    try:
        yield found
    finally:
        gc.collect()
        loop.set_exception_handler(handler)


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.getMessage() == event]


async def eventually(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(10):
        while not check():
            await asyncio.sleep(0.005)


class Held:
    """A processor that holds every job until released: jobs marked `fail` raise."""

    def __init__(self) -> None:
        self.started: set[UUID] = set()
        self.release = asyncio.Event()

    async def __call__(self, job: Job, context: JobContext) -> dict[str, Any]:
        self.started.add(job.id)
        await self.release.wait()
        if job.metadata.get("fail"):
            raise JobFailed("the content is broken", retryable=False)
        return {"ok": str(job.id)}


async def submit(engine: OrchestrationEngine, fails: list[bool]) -> list[Job]:
    specs = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{n}",
               metadata={"fail": fail})
        for n, fail in enumerate(fails)
    ]  # fmt: skip
    return (await engine.create_jobs(specs)).jobs


def make_worker(engine: OrchestrationEngine, processor: Any, **options: Any) -> Worker:
    defaults: dict[str, Any] = {
        "worker_id": "w1",
        "slots": SLOTS,
        "lease_seconds": 5,
        "poll_seconds": 0.02,
        "heartbeat_seconds": 0.02,
        "grace_seconds": 1,
        "report_retry_seconds": (0.005, 0.02),
    }
    return Worker(engine, processor, **defaults | options)


async def test_outcomes_met_by_an_outage_are_sent_once_the_database_is_back(
    engine: OrchestrationEngine,
    outage: Outage,
    caplog: pytest.LogCaptureFixture,
    unretrieved: list[dict[str, Any]],
) -> None:
    jobs = await submit(engine, [False, True, False, False, True, False])
    held = Held()
    worker = make_worker(engine, held)
    caplog.set_level(logging.INFO, logger="chute.worker")
    running = asyncio.create_task(worker.run())
    await eventually(lambda: len(held.started) == SLOTS, "the first jobs running")

    outage.away = True
    held.release.set()  # the first three finish: two completions and a failure to report
    await eventually(lambda: len(lines(caplog, "worker.report_delayed")) == SLOTS, "delays")
    tried_again = outage.refused + 30  # reports sent again (and heartbeats) meanwhile
    await eventually(lambda: outage.refused >= tried_again, "reports sent again")
    outage.away = False

    async def settled() -> bool:
        found = [await engine.get_job(job.id) for job in jobs]
        return all(job.status in (JobStatus.COMPLETED, JobStatus.FAILED) for job in found)

    async with asyncio.timeout(10):
        while not await settled():
            await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(running, 10)

    for job in jobs:
        found = await engine.get_job(job.id)
        expected = JobStatus.FAILED if job.metadata["fail"] else JobStatus.COMPLETED
        assert (found.status, found.attempts) == (expected, 1), found
    # One line for each report the outage met (no more: the retries are silent), and
    # each of those reports sent afterwards.
    assert len(lines(caplog, "worker.report_delayed")) == SLOTS
    assert len(lines(caplog, "worker.report_sent")) == SLOTS
    assert not lines(caplog, "worker.report_abandoned") and not lines(caplog, "worker.job_error")
    del running
    gc.collect()
    assert not unretrieved


async def test_a_report_whose_lease_ends_during_the_outage_is_given_up_and_logged(
    engine: OrchestrationEngine,
    outage: Outage,
    caplog: pytest.LogCaptureFixture,
    unretrieved: list[dict[str, Any]],
) -> None:
    jobs = await submit(engine, [False, True])
    held = Held()
    clock = Monotonic(asyncio.get_running_loop().time)
    worker = make_worker(engine, held, slots=2, monotonic=clock)
    caplog.set_level(logging.INFO, logger="chute.worker")
    running = asyncio.create_task(worker.run())
    await eventually(lambda: len(held.started) == 2, "both jobs running")

    outage.away = True
    held.release.set()
    await eventually(lambda: len(lines(caplog, "worker.report_delayed")) == 2, "delays")
    clock.ahead = 3600.0  # by the worker's clock, both leases have ended
    await eventually(lambda: len(lines(caplog, "worker.report_abandoned")) == 2, "given up")
    outage.away = False
    worker.stop()
    await asyncio.wait_for(running, 10)

    for job in jobs:  # left to the rescue of expired leases: no attempt is reported twice
        found = await engine.get_job(job.id)
        assert (found.status, found.attempts, found.last_error) == (JobStatus.RUNNING, 1, None)
    assert not lines(caplog, "worker.job_error")
    del running
    gc.collect()
    assert not unretrieved


class Refusing:
    """An engine whose `complete_jobs` fails whole, with an error of its own."""

    def __init__(self) -> None:
        self.error = RuntimeError("the whole call failed")

    async def complete_jobs(self, worker_id: str, completions: Any) -> Any:
        raise self.error


async def test_a_whole_batch_that_fails_gives_each_job_its_own_error() -> None:
    engine = Refusing()
    reports = Reporter(engine, "w1", (0.01, 0.05))  # type: ignore[arg-type]
    ids = [UuidV7Generator().new_id() for _ in range(3)]

    outcomes = await asyncio.gather(*(reports.complete(job_id, None) for job_id in ids))

    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert len({id(outcome) for outcome in outcomes}) == 3
    assert all(outcome.__cause__ is engine.error for outcome in outcomes)  # type: ignore[union-attr]
