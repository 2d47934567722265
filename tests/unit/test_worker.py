"""The in-process Worker on the in-memory adapters, with the real clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from chute.application import JobSort, NewJob, OrchestrationEngine, RetryPolicy
from chute.application.worker import JobContext, JobFailed, Worker
from chute.domain import Job, JobStatus, SourceType

from tests.factories import make_engine


@pytest.fixture
def engine() -> OrchestrationEngine:
    return make_engine(retry=RetryPolicy(base_seconds=60), jitter=lambda: 1.0)


async def submit(engine: OrchestrationEngine, n: int = 1, **fields: Any) -> list[Job]:
    specs = [
        NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{i}", **fields)
        for i in range(n)
    ]
    return (await engine.create_jobs(specs)).jobs


def worker(engine: OrchestrationEngine, processor: Any, **options: Any) -> Worker:
    defaults: dict[str, Any] = {
        "worker_id": "w1",
        "lease_seconds": 5,
        "poll_seconds": 0.02,
        "heartbeat_seconds": 0.02,
        "grace_seconds": 0.1,
    }
    return Worker(engine, processor, **defaults | options)


async def run_until(w: Worker, done: Any, timeout: float = 5.0) -> None:
    task = asyncio.create_task(w.run())
    try:
        async with asyncio.timeout(timeout):
            while not await done():
                await asyncio.sleep(0.01)
    finally:
        w.stop()
        await asyncio.wait_for(task, timeout)


async def statuses(engine: OrchestrationEngine) -> list[JobStatus]:
    return [job.status for job in (await engine.list_jobs(sort=JobSort.OLDEST)).items]


async def test_worker_completes_jobs_with_the_processors_result(
    engine: OrchestrationEngine,
) -> None:
    jobs = await submit(engine, 5)

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        await context.progress(50, "half way")
        return {"uri": job.source_uri}

    async def all_done() -> bool:
        return await statuses(engine) == [JobStatus.COMPLETED] * 5

    await run_until(worker(engine, process, slots=2), all_done)
    first = await engine.get_job(jobs[0].id)
    assert first.result == {"uri": first.source_uri} and first.progress == 50
    events = await engine.list_job_events(first.id)
    assert [(e.to_status, e.actor) for e in events] == [
        (JobStatus.PENDING, "client"),
        (JobStatus.RUNNING, "w1"),
        (JobStatus.COMPLETED, "w1"),
    ]


async def test_worker_runs_slots_concurrently(engine: OrchestrationEngine) -> None:
    await submit(engine, 3)
    started = asyncio.Event()
    running = 0

    async def process(job: Job, context: JobContext) -> None:
        nonlocal running
        running += 1
        if running == 3:
            started.set()
        await asyncio.wait_for(started.wait(), 2)

    async def all_done() -> bool:
        return await statuses(engine) == [JobStatus.COMPLETED] * 3

    await run_until(worker(engine, process, slots=3), all_done)


async def test_jobs_that_finish_together_are_completed_and_claimed_in_one_call(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A remote worker's calls are requests: one per batch of slots, not one per slot.
    await submit(engine, 12)
    batches: list[int] = []
    claims: list[tuple[int, int]] = []
    complete_jobs, claim_jobs = engine.complete_jobs, engine.claim_jobs

    async def spy(worker_id: str, completions: Any) -> Any:
        batches.append(len(completions))
        return await complete_jobs(worker_id, completions)

    async def claim_spy(worker_id: str, **options: Any) -> list[Job]:
        jobs = await claim_jobs(worker_id, **options)
        claims.extend([(options["limit"], len(jobs))] if jobs else [])
        return jobs

    async def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker completes its jobs in batches")

    monkeypatch.setattr(engine, "complete_jobs", spy)
    monkeypatch.setattr(engine, "complete_job", one_at_a_time)
    monkeypatch.setattr(engine, "claim_jobs", claim_spy)

    async def noop(job: Job, context: JobContext) -> None:
        return None

    async def all_done() -> bool:
        return await statuses(engine) == [JobStatus.COMPLETED] * 12

    await run_until(worker(engine, noop, slots=4), all_done)
    assert sum(batches) == 12
    assert max(batches) == 4  # the slots freed together were claimed together again
    assert claims == [(4, 4)] * 3


async def test_a_lost_lease_in_a_batch_leaves_the_others_completed(
    engine: OrchestrationEngine,
) -> None:
    jobs = await submit(engine, 3)
    lost = jobs[1].id
    batches: list[int] = []
    complete_jobs = engine.complete_jobs

    async def spy(worker_id: str, completions: Any) -> Any:
        batches.append(len(completions))
        return await complete_jobs(worker_id, completions)

    engine.complete_jobs = spy  # type: ignore[method-assign]
    together = asyncio.Barrier(3)

    async def process(job: Job, context: JobContext) -> None:
        if job.id == lost:  # another worker's now: the rescuer took it back meanwhile
            await engine.release_job(job.id, "w1")
            await engine.claim_jobs("w2")
        await together.wait()  # all three end at once

    async def settled() -> bool:
        done, held = JobStatus.COMPLETED, JobStatus.RUNNING
        return await statuses(engine) == [done, held, done]

    await run_until(worker(engine, process, slots=3), settled)
    assert (await engine.get_job(lost)).worker_id == "w2"
    assert batches == [3]


@pytest.mark.parametrize(
    ("error", "expected", "run_after"),
    [
        (RuntimeError("boom"), JobStatus.PENDING, True),
        (JobFailed("bad input", retryable=False), JobStatus.FAILED, False),
    ],
)
async def test_processor_errors_fail_the_attempt(
    engine: OrchestrationEngine, error: Exception, expected: JobStatus, run_after: bool
) -> None:
    [job] = await submit(engine)

    async def process(job: Job, context: JobContext) -> None:
        raise error

    async def failed_once() -> bool:
        return (await engine.get_job(job.id)).last_error is not None

    await run_until(worker(engine, process), failed_once)
    after = await engine.get_job(job.id)
    assert after.status is expected and (after.run_after is not None) == run_after
    assert after.attempts == 1 and str(error) in (after.last_error or "")


async def test_cancelling_a_running_job_stops_its_processor(engine: OrchestrationEngine) -> None:
    [job] = await submit(engine)
    entered, stopped = asyncio.Event(), asyncio.Event()

    async def process(job: Job, context: JobContext) -> None:
        entered.set()
        try:
            await asyncio.sleep(30)
        finally:
            stopped.set()

    async def cancelled() -> bool:
        if entered.is_set() and (await engine.get_job(job.id)).status is JobStatus.RUNNING:
            assert (await engine.cancel_job(job.id)).job.status is JobStatus.CANCELLING
        return (await engine.get_job(job.id)).status is JobStatus.CANCELLED

    await run_until(worker(engine, process), cancelled)
    assert stopped.is_set()


async def test_stop_releases_jobs_still_running_after_the_grace_period(
    engine: OrchestrationEngine,
) -> None:
    [job] = await submit(engine)
    entered = asyncio.Event()

    async def process(job: Job, context: JobContext) -> None:
        entered.set()
        await asyncio.sleep(30)

    async def running() -> bool:
        return entered.is_set()

    await run_until(worker(engine, process), running)
    after = await engine.get_job(job.id)
    assert (after.status, after.attempts, after.worker_id) == (JobStatus.PENDING, 0, None)
    assert (await engine.claim_jobs("w2"))[0].id == job.id


async def test_stop_lets_jobs_that_finish_within_the_grace_period_complete(
    engine: OrchestrationEngine,
) -> None:
    [job] = await submit(engine)
    entered = asyncio.Event()

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        entered.set()
        await asyncio.sleep(0.05)
        return {"ok": True}

    async def running() -> bool:
        return entered.is_set()

    await run_until(worker(engine, process, grace_seconds=2), running)
    assert (await engine.get_job(job.id)).status is JobStatus.COMPLETED


class SlowToCancel:
    """An engine call that waits until cancelled and then needs a moment to clean up,
    as a database call does when it gives its connection back."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cleaned = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)
            self.cleaned.set()
            raise


async def test_run_returns_after_the_rescue_it_cancelled_has_ended(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Else the rescue's cleanup outlives the engine it runs on: `chute worker` closed the
    # database under it and hung at exit, waiting for a task that could not end.
    rescue = SlowToCancel()
    monkeypatch.setattr(engine, "rescue_expired_leases", rescue)

    async def rescuing() -> bool:
        return rescue.entered.is_set()

    await run_until(worker(engine, None), rescuing)
    assert rescue.cleaned.is_set()


async def test_a_job_ends_after_the_heartbeat_it_cancelled_has_ended(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    [job] = await submit(engine)
    beat = SlowToCancel()
    monkeypatch.setattr(engine, "heartbeat", beat)

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        await beat.entered.wait()
        return {"ok": True}

    async def completed() -> bool:
        return (await engine.get_job(job.id)).status is JobStatus.COMPLETED

    await run_until(worker(engine, process), completed)
    assert beat.cleaned.is_set()


@pytest.mark.parametrize(
    ("outcome", "words"),
    [
        ({"when": object()}, "must be JSON-serialisable"),  # a result the job cannot keep
        (JobFailed("é" * 6000, retryable=False), "éé"),  # 12000 bytes of UTF-8
    ],
    ids=["bad-result", "long-error"],
)
async def test_a_report_the_engine_refuses_still_ends_the_job(
    engine: OrchestrationEngine, outcome: Any, words: str
) -> None:
    [job] = await submit(engine)

    async def process(job: Job, context: JobContext) -> Any:
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def failed() -> bool:
        return (await engine.get_job(job.id)).status is JobStatus.FAILED

    await run_until(worker(engine, process), failed)
    error = (await engine.get_job(job.id)).last_error
    assert error is not None and words in error and len(error.encode()) <= 8192
