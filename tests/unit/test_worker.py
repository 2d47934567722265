"""The in-process Worker on the in-memory adapters, with the real clock."""

from __future__ import annotations

import asyncio
from functools import partial
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
    # One call (one commit in a database, one pair of requests to a server) completes
    # the jobs that finished together and claims the next ones for their slots.
    await submit(engine, 12)
    calls: list[tuple[int, int, int]] = []  # completions, limit, claimed
    claims: list[tuple[int, int]] = []
    complete_and_claim, claim_jobs = engine.complete_and_claim, engine.claim_jobs

    async def spy(worker_id: str, completions: Any, **options: Any) -> Any:
        outcomes, jobs = await complete_and_claim(worker_id, completions, **options)
        calls.append((len(completions), options["limit"], len(jobs)))
        return outcomes, jobs

    async def claim_spy(worker_id: str, **options: Any) -> list[Job]:
        jobs = await claim_jobs(worker_id, **options)
        claims.extend([(options["limit"], len(jobs))] if jobs else [])
        return jobs

    async def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker completes its jobs in batches, with its next claim")

    monkeypatch.setattr(engine, "complete_and_claim", spy)
    monkeypatch.setattr(engine, "complete_job", one_at_a_time)
    monkeypatch.setattr(engine, "complete_jobs", one_at_a_time)
    monkeypatch.setattr(engine, "claim_jobs", claim_spy)

    async def noop(job: Job, context: JobContext) -> None:
        return None

    async def all_done() -> bool:
        return await statuses(engine) == [JobStatus.COMPLETED] * 12

    await run_until(worker(engine, noop, slots=4), all_done)
    assert claims == [(4, 4)]  # the first claim; the others came with completions
    assert calls == [(4, 4, 4), (4, 4, 4), (4, 4, 0)]


async def test_a_worker_never_runs_more_processors_than_its_slots(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slots free as processors end, while their reports are on their way; a claim of
    # the main loop and one that comes with completions never fill the same slot twice.
    await submit(engine, 40)
    running, most = 0, 0

    async def slow(call: Any, *args: Any, **options: Any) -> Any:
        await asyncio.sleep(0.003)  # as a database's call: others run meanwhile
        return await call(*args, **options)

    monkeypatch.setattr(engine, "claim_jobs", partial(slow, engine.claim_jobs))
    monkeypatch.setattr(engine, "complete_and_claim", partial(slow, engine.complete_and_claim))

    async def process(job: Job, context: JobContext) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001 * (hash(job.id) % 5))
        running -= 1

    async def all_done() -> bool:
        return await statuses(engine) == [JobStatus.COMPLETED] * 40

    await run_until(worker(engine, process, slots=3), all_done)
    assert most == 3


async def test_jobs_claimed_with_a_stopping_workers_last_completions_are_released(
    engine: OrchestrationEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stop comes while completions and the claim of the next jobs are on their way:
    # those jobs get the grace period, then go back to pending, none left held.
    await submit(engine, 4)
    started: list[Job] = []

    async def process(job: Job, context: JobContext) -> None:
        started.append(job)
        if len(started) > 2:  # the jobs claimed last would run on and on
            await asyncio.sleep(60)

    w = worker(engine, process, slots=2)
    complete_and_claim = engine.complete_and_claim

    async def stopping(worker_id: str, completions: Any, **options: Any) -> Any:
        w.stop()
        await asyncio.sleep(0.05)  # the worker drains its running jobs meanwhile
        return await complete_and_claim(worker_id, completions, **options)

    monkeypatch.setattr(engine, "complete_and_claim", stopping)
    await asyncio.wait_for(w.run(), 5)
    assert len(started) == 4
    first, last = started[:2], started[2:]
    assert [(await engine.get_job(job.id)).status for job in first] == [JobStatus.COMPLETED] * 2
    for job in last:
        found = await engine.get_job(job.id)
        assert (found.status, found.worker_id) == (JobStatus.PENDING, None)


async def test_a_lost_lease_in_a_batch_leaves_the_others_completed(
    engine: OrchestrationEngine,
) -> None:
    jobs = await submit(engine, 3)
    lost = jobs[1].id
    batches: list[int] = []
    complete_and_claim = engine.complete_and_claim

    async def spy(worker_id: str, completions: Any, **options: Any) -> Any:
        batches.append(len(completions))
        return await complete_and_claim(worker_id, completions, **options)

    engine.complete_and_claim = spy  # type: ignore[method-assign]
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
