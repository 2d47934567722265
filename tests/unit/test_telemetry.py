"""What the engine tells its `Telemetry`, and when: after each commit, one fact per
status change, with the waits and run times of the clock."""

from __future__ import annotations

from typing import Any

from chute.adapters.system import ManualClock
from chute.application import NoTelemetry, OrchestrationEngine
from chute.domain import Job

from tests.factories import BASE_TIME, make_engine, make_new_job


class Recorder(NoTelemetry):
    def __init__(self) -> None:
        self.facts: list[tuple[Any, ...]] = []
        self.spans: list[str] = []

    def jobs_created(self, queue: str, source_type: str, count: int) -> None:
        self.facts.append(("created", queue, source_type, count))

    def job_claimed(self, queue: str, waited_seconds: float | None) -> None:
        self.facts.append(("claimed", queue, waited_seconds))

    def attempt_ended(self, queue: str, ran_seconds: float) -> None:
        self.facts.append(("ended", queue, ran_seconds))

    def job_finished(self, queue: str, status: str) -> None:
        self.facts.append(("finished", queue, status))

    def span(self, name: str) -> Any:
        self.spans.append(name)
        return super().span(name)

    def take(self) -> list[tuple[Any, ...]]:
        facts, self.facts = self.facts, []
        return facts


def engine_with(recorder: Recorder, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(telemetry=recorder, clock=clock)


async def claim_one(engine: OrchestrationEngine) -> Job:
    (job,) = await engine.claim_jobs("w1")
    return job


async def test_a_job_that_fails_once_then_completes() -> None:
    recorder, clock = Recorder(), ManualClock(BASE_TIME)
    engine = engine_with(recorder, clock)
    await engine.create_jobs([make_new_job(queue="q")] * 2 + [make_new_job(queue="r")])
    assert sorted(recorder.take()) == [("created", "q", "url", 2), ("created", "r", "url", 1)]
    clock.advance(3)
    job = await claim_one(engine)
    assert recorder.take() == [("claimed", job.queue, 3.0)]
    clock.advance(2)
    await engine.fail_job(job.id, "w1", "flaky", retryable=True)
    assert recorder.take() == [("ended", job.queue, 2.0)]  # retried: not finished
    clock.advance(3600)  # past the backoff
    again = [j for j in await engine.claim_jobs("w1", limit=3) if j.id == job.id]
    assert again and ("claimed", job.queue, None) in recorder.take()  # no second wait
    clock.advance(4)
    await engine.complete_job(job.id, "w1")
    assert recorder.take() == [("ended", job.queue, 4.0), ("finished", job.queue, "completed")]
    assert {"chute.create_jobs", "chute.claim_jobs", "chute.complete_job"} <= set(recorder.spans)


async def test_cancels_rescues_and_refusals() -> None:
    recorder, clock = Recorder(), ManualClock(BASE_TIME)
    engine = engine_with(recorder, clock)
    pending = (await engine.create_job(make_new_job(queue="q"))).job
    held = (await engine.create_job(make_new_job(queue="q", max_attempts=1))).job
    recorder.take()
    await engine.cancel_job(pending.id)
    assert recorder.take() == [("finished", "q", "cancelled")]  # never ran: no attempt
    await claim_one(engine)
    recorder.take()
    await engine.complete_jobs("w2", [(held.id, None)])  # not the holder: refused
    assert recorder.take() == []
    clock.advance(61)  # the lease ends
    await engine.rescue_expired_leases()
    assert recorder.take() == [("ended", "q", 61.0), ("finished", "q", "failed")]


async def test_an_idempotent_replay_creates_nothing_to_count() -> None:
    recorder, clock = Recorder(), ManualClock(BASE_TIME)
    engine = engine_with(recorder, clock)
    await engine.create_job(make_new_job(), idempotency_key="k")
    recorder.take()
    replay = await engine.create_job(make_new_job(), idempotency_key="k")
    assert replay.replayed and recorder.take() == []
