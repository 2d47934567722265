"""Workers' use cases on every database (memory, SQLite, PostgreSQL): one contract.

Claim, heartbeat, complete, fail, release and the rescue of expired leases, with the
status history each of them writes. The clock is a `ManualClock` and jitter is 1, so
that leases and backoffs are exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from chute.adapters.system import ManualClock, UuidV7Generator
from chute.application import ClaimFilter, OrchestrationEngine, QueueChange, ValidationFailed
from chute.application.ports import UnitOfWorkFactory
from chute.domain import Job, JobStatus, LeaseNotHeld, Mode, Priority, SourceType

from tests.factories import at, make_engine, make_job, make_new_job

S, P = JobStatus, Priority
START = at(1000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def engine(database: UnitOfWorkFactory, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(uow=database, clock=clock, jitter=lambda: 1.0)


async def new_job(engine: OrchestrationEngine, clock: ManualClock, **fields: Any) -> Job:
    """A job created now; the clock then moves on a second, so that it is the oldest."""
    made = (await engine.create_job(make_new_job(**fields))).job
    clock.advance(1)
    return made


async def claim_one(engine: OrchestrationEngine, worker_id: str = "w1", **options: Any) -> Job:
    [job] = await engine.claim_jobs(worker_id, **options)
    return job


async def history(engine: OrchestrationEngine, job_id: UUID) -> list[tuple[Any, ...]]:
    events = await engine.list_job_events(job_id)
    return [(e.from_status, e.to_status, e.actor, e.detail) for e in events]


async def snapshot(engine: OrchestrationEngine, *job_ids: UUID) -> list[Any]:
    """Everything stored about these jobs: every field, and the history."""
    jobs = [dataclasses.asdict(await engine.get_job(job_id)) for job_id in job_ids]
    return [jobs, [await engine.list_job_events(job_id) for job_id in job_ids]]


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


# -- claiming -------------------------------------------------------------------------


async def test_claim_takes_higher_priority_first_then_older_then_lower_id(
    database: UnitOfWorkFactory, engine: OrchestrationEngine
) -> None:
    # Ids whose integer order differs from the order of their last bytes.
    specs = [
        (P.LOW, 0, 0xFF), (P.NORMAL, 0, 1 << 100), (P.URGENT, 2, 5), (P.HIGH, 1, 0x100),
        (P.NORMAL, 0, 0xFE), (P.URGENT, 1, 1 << 120), (P.HIGH, 1, 1), (P.LOW, -5, 4),
        (P.URGENT, 1, 3), (P.NORMAL, -1, 2),
    ]  # fmt: skip
    jobs = [make_job(priority=p, created_at=at(t), id=UUID(int=i)) for p, t, i in specs]
    async with database() as uow:
        await uow.jobs.add(jobs)
        await uow.commit()
    expected = [j.id for j in sorted(jobs, key=lambda j: (-j.priority.rank, j.created_at, j.id))]

    first = await engine.claim_jobs("w1", limit=3)
    rest = [(await claim_one(engine)).id for _ in range(len(jobs) - 3)]
    assert [job.id for job in first] + rest == expected
    assert await engine.claim_jobs("w1", limit=100) == []


async def test_claim_takes_at_most_limit_jobs(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    made = [await new_job(engine, clock) for _ in range(5)]
    assert [job.id for job in await engine.claim_jobs("w1", limit=2)] == [j.id for j in made[:2]]
    assert [job.id for job in await engine.claim_jobs("w2", limit=5)] == [j.id for j in made[2:]]
    assert await engine.claim_jobs("w3", limit=5) == []


async def test_a_job_is_claimable_only_once_its_run_after_has_come(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    await claim_one(engine)
    failed = await engine.fail_job(job.id, "w1", "boom")
    assert failed.run_after == clock.now() + seconds(1)
    assert await engine.claim_jobs("w2") == []
    clock.advance(0.999999)
    assert await engine.claim_jobs("w2") == []
    clock.advance(0.000001)  # run_after is now: due
    assert (await claim_one(engine, "w2")).id == job.id


CLAIM_FILTERS: list[tuple[ClaimFilter, str]] = [
    (ClaimFilter(), "abcdef"),
    (ClaimFilter(modes=frozenset({Mode.FAST})), "be"),
    (ClaimFilter(modes=frozenset({Mode.FAST, Mode.ACCURATE})), "bce"),
    (ClaimFilter(source_types=frozenset({SourceType.S3})), "bd"),
    (ClaimFilter(mime_type="image/png"), "a"),
    (ClaimFilter(mime_type="image/*"), "abf"),  # not imagex/png
    (ClaimFilter(mime_type="image/*", source_types=frozenset({SourceType.URL})), "af"),
    (ClaimFilter(mime_type="video/*"), ""),
]
FILTERED_JOBS = {
    "a": {"source_type": SourceType.URL, "mode": Mode.AUTO, "mime_type": "image/png"},
    "b": {"source_type": SourceType.S3, "mode": Mode.FAST, "mime_type": "image/jpeg"},
    "c": {"source_type": SourceType.URL, "mode": Mode.ACCURATE, "mime_type": "application/pdf"},
    "d": {"source_type": SourceType.S3, "mode": Mode.AUTO, "mime_type": None},
    "e": {"source_type": SourceType.URL, "mode": Mode.FAST, "mime_type": "imagex/png"},
    "f": {"source_type": SourceType.URL, "mode": Mode.AUTO, "mime_type": "image/svg+xml"},
}


@pytest.mark.parametrize(("filt", "expected"), CLAIM_FILTERS)
async def test_claim_filters_take_only_the_matching_jobs(
    engine: OrchestrationEngine, clock: ManualClock, filt: ClaimFilter, expected: str
) -> None:
    made = {}
    for name, fields in FILTERED_JOBS.items():
        uri = "s3://my-bucket/key" if fields["source_type"] is SourceType.S3 else None
        made[name] = await new_job(engine, clock, **fields, **({"source_uri": uri} if uri else {}))
    claimed = await engine.claim_jobs("w1", limit=100, filter=filt)
    assert [job.id for job in claimed] == [made[name].id for name in expected]
    for name, job in made.items():
        status = (await engine.get_job(job.id)).status
        assert status is (S.RUNNING if name in expected else S.PENDING)


async def test_a_claimed_job_runs_under_a_lease_of_its_worker(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    now = clock.now()
    claimed = await claim_one(engine, "w1", lease_seconds=45)
    stored = await engine.get_job(job.id)
    for found in (claimed, stored):
        assert (found.status, found.attempts, found.worker_id) == (S.RUNNING, 1, "w1")
        assert (found.lease_seconds, found.lease_expires_at) == (45, now + seconds(45))
        assert (found.started_at, found.updated_at, found.run_after) == (now, now, None)
    second = await new_job(engine, clock)
    assert (await claim_one(engine)).lease_expires_at == clock.now() + seconds(60)
    assert (await engine.get_job(second.id)).worker_id == "w1"


# -- heartbeat ------------------------------------------------------------------------


async def test_heartbeat_extends_the_lease_and_records_progress(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    await claim_one(engine, lease_seconds=30)
    clock.advance(20)
    beat = await engine.heartbeat(job.id, "w1")
    assert beat.lease_expires_at == clock.now() + seconds(30)  # the claimed length
    assert (beat.progress, beat.progress_message) == (None, None)
    clock.advance(25)  # past the first lease, within the extended one
    beat = await engine.heartbeat(
        job.id, "w1", lease_seconds=100, progress=40, progress_message="à moitié"
    )
    assert beat.lease_expires_at == clock.now() + seconds(100)
    stored = await engine.get_job(job.id)
    assert (stored.status, stored.progress, stored.progress_message) == (S.RUNNING, 40, "à moitié")
    assert stored.lease_expires_at == beat.lease_expires_at
    clock.advance(1)
    beat = await engine.heartbeat(job.id, "w1", progress=41)
    assert (beat.progress, beat.progress_message) == (41, "à moitié")
    assert [e[:3] for e in await history(engine, job.id)] == [
        (None, S.PENDING, "client"),
        (S.PENDING, S.RUNNING, "w1"),
    ]  # heartbeats change no status, and leave no event


async def test_heartbeat_refuses_a_worker_that_holds_no_live_lease(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    done = await new_job(engine, clock)
    held = await new_job(engine, clock)
    pending = await new_job(engine, clock)
    await claim_one(engine, "w1")
    await engine.complete_job(done.id, "w1")
    await claim_one(engine, "w1", lease_seconds=10)
    before = await snapshot(engine, pending.id, done.id, held.id)
    with pytest.raises(LeaseNotHeld):
        await engine.heartbeat(pending.id, "w1")  # held by nobody yet
    with pytest.raises(LeaseNotHeld):
        await engine.heartbeat(done.id, "w1")  # held by nobody any more
    with pytest.raises(LeaseNotHeld):
        await engine.heartbeat(held.id, "w2")  # held by another worker
    clock.advance(10)  # the lease ends now; no rescue has run
    with pytest.raises(LeaseNotHeld):
        await engine.heartbeat(held.id, "w1")
    assert await snapshot(engine, pending.id, done.id, held.id) == before
    assert (await engine.get_job(held.id)).status is S.RUNNING


# -- complete, fail, release ------------------------------------------------------------

Report = Callable[[OrchestrationEngine, UUID, str], Awaitable[Job]]
REPORTS: dict[str, Report] = {
    "complete": lambda engine, job_id, worker: engine.complete_job(job_id, worker),
    "fail": lambda engine, job_id, worker: engine.fail_job(job_id, worker, "boom"),
    "release": lambda engine, job_id, worker: engine.release_job(job_id, worker),
}


@pytest.mark.parametrize("report", list(REPORTS))
async def test_only_the_holder_of_a_live_lease_may_report(
    engine: OrchestrationEngine, clock: ManualClock, report: str
) -> None:
    act = REPORTS[report]
    held, reported = await new_job(engine, clock), await new_job(engine, clock)
    pending = await new_job(engine, clock)
    await engine.claim_jobs("w1", limit=2, lease_seconds=10)
    assert (await act(engine, reported.id, "w1")).status is not S.RUNNING
    before = await snapshot(engine, held.id, reported.id, pending.id)
    refused = [
        (pending.id, "w1"),  # held by nobody yet
        (reported.id, "w1"),  # held by nobody any more: it has moved on
        (held.id, "w2"),  # held by another worker
        (held.id, "W1"),
    ]
    for job_id, worker in refused:
        with pytest.raises(LeaseNotHeld):
            await act(engine, job_id, worker)
    clock.advance(10)
    with pytest.raises(LeaseNotHeld):
        await act(engine, held.id, "w1")  # the lease has ended, though no rescue ran
    assert await snapshot(engine, held.id, reported.id, pending.id) == before


async def test_complete_records_the_result_and_ends_the_lease(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    await claim_one(engine)
    clock.advance(3)
    done = await engine.complete_job(job.id, "w1", result={"pages": 3, "text": "naïve"})
    stored = await engine.get_job(job.id)
    for found in (done, stored):
        assert (found.status, found.result, found.attempts) == (S.COMPLETED, done.result, 1)
        assert (found.worker_id, found.lease_expires_at) == (None, None)
        assert found.finished_at == found.updated_at == clock.now()
    assert stored.result == {"pages": 3, "text": "naïve"}


async def test_complete_jobs_completes_each_held_job_and_refuses_each_other_alone(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    first, refused, others, second = [await new_job(engine, clock) for _ in range(4)]
    await engine.claim_jobs("w1", limit=2)  # first, refused
    await engine.claim_jobs("w2")  # others
    await engine.claim_jobs("w1")  # second
    clock.advance(3)
    missing = UuidV7Generator().new_id()
    outcomes = await engine.complete_jobs(
        "w1",
        [
            (first.id, {"pages": 3}),
            (refused.id, {"blob": "x" * (1 << 20)}),  # a result over the limit
            (others.id, None),
            (missing, None),
            (second.id, None),
            (second.id, None),  # twice: no longer held
        ],
    )
    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert kinds == [
        "Job", "ValidationFailed", "LeaseNotHeld", "JobNotFound", "Job", "LeaseNotHeld",
    ]  # fmt: skip
    for job, result in ((first, {"pages": 3}), (second, None)):
        stored = await engine.get_job(job.id)
        assert (stored.status, stored.result, stored.worker_id) == (S.COMPLETED, result, None)
        assert stored.finished_at == clock.now()
        assert (await history(engine, job.id))[-1] == (S.RUNNING, S.COMPLETED, "w1", None)
    assert (await engine.get_job(refused.id)).worker_id == "w1"
    assert (await engine.get_job(others.id)).worker_id == "w2"
    assert await engine.complete_jobs("w1", []) == []


async def test_complete_and_claim_completes_held_jobs_then_claims_the_next_ones(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    first, refused, second = [await new_job(engine, clock) for _ in range(3)]
    low = await new_job(engine, clock, priority=P.LOW)
    oldest, newer, newest = [await new_job(engine, clock) for _ in range(3)]
    await engine.claim_jobs("w1", limit=3)  # first, refused, second
    clock.advance(3)
    outcomes, claimed = await engine.complete_and_claim(
        "w1",
        [
            (first.id, {"pages": 3}),
            (refused.id, {"blob": "x" * (1 << 20)}),  # a result over the limit
            (UuidV7Generator().new_id(), None),
            (second.id, None),
        ],
        limit=2,
        lease_seconds=30,
    )
    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert kinds == ["Job", "ValidationFailed", "JobNotFound", "Job"]
    assert [job.id for job in claimed] == [oldest.id, newer.id]  # in claim order
    for job in claimed:
        stored = await engine.get_job(job.id)
        assert (stored.status, stored.worker_id, stored.attempts) == (S.RUNNING, "w1", 1)
        assert stored.lease_expires_at == clock.now() + seconds(30)
        assert await history(engine, job.id) == [
            (None, S.PENDING, "client", None), (S.PENDING, S.RUNNING, "w1", None),
        ]  # fmt: skip
    for job, result in ((first, {"pages": 3}), (second, None)):
        stored = await engine.get_job(job.id)
        assert (stored.status, stored.result, stored.worker_id) == (S.COMPLETED, result, None)
        assert (await history(engine, job.id))[-1] == (S.RUNNING, S.COMPLETED, "w1", None)
    assert (await engine.get_job(refused.id)).status is S.RUNNING
    assert [job.status for job in await _jobs(engine, low, newest)] == [S.PENDING] * 2


async def test_complete_and_claim_leaves_the_room_its_completions_free_to_the_next_claim(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    # The completions and the claim are written by one statement: until then the jobs
    # completed still count in their limited queue, and the claim takes other queues'.
    await engine.update_queue("q", QueueChange(concurrency_limit=2, set_concurrency_limit=True))
    held = [await new_job(engine, clock, queue="q") for _ in range(2)]
    waiting = [await new_job(engine, clock, queue="q") for _ in range(3)]
    other = await new_job(engine, clock, queue="other")
    assert len(await engine.claim_jobs("w1", limit=2)) == 2
    outcomes, claimed = await engine.complete_and_claim(
        "w1", [(job.id, None) for job in held], limit=4
    )
    assert all(isinstance(outcome, Job) for outcome in outcomes)
    assert [job.id for job in claimed] == [other.id]
    again = await engine.claim_jobs("w2", limit=4)  # the next claim, anyone's
    assert [job.id for job in again] == [job.id for job in waiting[:2]]


async def test_complete_and_claim_refuses_a_bad_claim_before_completing_anything(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    await new_job(engine, clock)
    await claim_one(engine)
    before = await snapshot(engine, job.id)
    with pytest.raises(ValidationFailed):
        await engine.complete_and_claim("w1", [(job.id, None)], limit=0)
    assert await snapshot(engine, job.id) == before


async def _jobs(engine: OrchestrationEngine, *jobs: Job) -> list[Job]:
    return [await engine.get_job(job.id) for job in jobs]


async def test_fail_waits_an_exponential_backoff_up_to_its_cap(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock, max_attempts=12)
    for attempt in range(1, 12):
        assert (await claim_one(engine)).attempts == attempt
        failed = await engine.fail_job(job.id, "w1", f"boom {attempt}")
        wait = min(600, 2 ** (attempt - 1))
        assert (failed.status, failed.last_error) == (S.PENDING, f"boom {attempt}")
        assert failed.run_after == clock.now() + seconds(wait)
        assert (failed.worker_id, failed.lease_expires_at, failed.finished_at) == (None,) * 3
        assert (await engine.get_job(job.id)).run_after == failed.run_after
        clock.advance(wait)
    assert (await claim_one(engine)).attempts == 12
    failed = await engine.fail_job(job.id, "w1", "boom 12")  # no attempt left
    assert (failed.status, failed.last_error, failed.attempts) == (S.FAILED, "boom 12", 12)
    assert failed.finished_at == clock.now() and failed.run_after is None
    assert await engine.claim_jobs("w1") == []


async def test_fail_that_is_not_retryable_fails_the_job_at_once(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock, max_attempts=3)
    await claim_one(engine)
    failed = await engine.fail_job(job.id, "w1", "bad input", retryable=False)
    assert (failed.status, failed.attempts, failed.run_after) == (S.FAILED, 1, None)
    assert (await engine.get_job(job.id)).status is S.FAILED


async def test_a_cancelling_job_ends_cancelled_on_fail_and_completed_on_complete(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    failing, completing = await new_job(engine, clock), await new_job(engine, clock)
    await engine.claim_jobs("w1", limit=2)
    for job in (failing, completing):
        cancel = await engine.cancel_job(job.id)
        assert cancel.changed and cancel.job.status is S.CANCELLING
        assert (await engine.heartbeat(job.id, "w1")).status is S.CANCELLING  # stop, worker
    failed = await engine.fail_job(failing.id, "w1", "stopped")  # attempts were left
    assert (failed.status, failed.last_error, failed.run_after) == (S.CANCELLED, "stopped", None)
    done = await engine.complete_job(completing.id, "w1", result={"kept": True})
    assert (done.status, done.result) == (S.COMPLETED, {"kept": True})
    assert (await engine.get_job(failing.id)).status is S.CANCELLED
    assert (await engine.get_job(completing.id)).result == {"kept": True}


async def test_release_puts_the_job_back_at_once_without_counting_the_attempt(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    cancelled = await new_job(engine, clock)
    await claim_one(engine)
    released = await engine.release_job(job.id, "w1")
    assert (released.status, released.attempts, released.run_after) == (S.PENDING, 0, None)
    assert (released.worker_id, released.lease_expires_at) == (None, None)
    again = await claim_one(engine, "w2")
    assert (again.id, again.attempts, again.worker_id) == (job.id, 1, "w2")
    await claim_one(engine, "w1")
    await engine.cancel_job(cancelled.id)
    assert (await engine.release_job(cancelled.id, "w1")).status is S.CANCELLED


# -- rescue -----------------------------------------------------------------------------


async def test_rescue_takes_back_expired_leases_only(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    retried = await new_job(engine, clock, max_attempts=3)
    spent = await new_job(engine, clock, max_attempts=1)
    cancelling = await new_job(engine, clock)
    live = await new_job(engine, clock)
    await engine.claim_jobs("w1", limit=3, lease_seconds=10)
    await engine.cancel_job(cancelling.id)
    await claim_one(engine, "w2", lease_seconds=60)
    clock.advance(9.999999)
    assert await engine.rescue_expired_leases() == []  # one microsecond of lease left
    clock.advance(0.000001)
    # A lease ending now has ended: its holder may no longer report, so it is rescued.
    with pytest.raises(LeaseNotHeld):
        await engine.heartbeat(retried.id, "w1")
    rescued = await engine.rescue_expired_leases()
    assert [job.id for job in rescued] == [retried.id, spent.id, cancelling.id]

    found = {job.id: await engine.get_job(job.id) for job in (retried, spent, cancelling, live)}
    pending, failed = found[retried.id], found[spent.id]
    assert (pending.status, pending.attempts, pending.worker_id) == (S.PENDING, 1, None)
    assert (pending.lease_expires_at, pending.run_after) == (None, None)
    assert (failed.status, failed.last_error) == (S.FAILED, "lease expired")
    assert failed.finished_at == clock.now()
    assert found[cancelling.id].status is S.CANCELLED
    assert (found[live.id].status, found[live.id].worker_id) == (S.RUNNING, "w2")
    assert await engine.rescue_expired_leases() == []
    assert (await claim_one(engine, "w3")).id == retried.id  # claimable again at once


async def test_rescue_takes_the_longest_expired_first_up_to_its_limit(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    made = [await new_job(engine, clock) for _ in range(5)]
    for lease in (14, 13, 12, 11, 10):  # the later claimed, the sooner it expires
        await claim_one(engine, lease_seconds=lease)
    clock.advance(30)
    first = await engine.rescue_expired_leases(limit=2)
    rest = await engine.rescue_expired_leases(limit=100)
    assert [job.id for job in first + rest] == [job.id for job in reversed(made)]


async def test_rescue_leaves_a_job_that_moved_on_or_renewed_its_lease(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    done, renewed = await new_job(engine, clock), await new_job(engine, clock)
    await engine.claim_jobs("w1", limit=2, lease_seconds=10)
    clock.advance(8)
    await engine.complete_job(done.id, "w1")
    await engine.heartbeat(renewed.id, "w1")  # now expires at +18
    clock.advance(5)
    before = await snapshot(engine, done.id, renewed.id)
    assert await engine.rescue_expired_leases() == []
    assert await snapshot(engine, done.id, renewed.id) == before


# -- the history ------------------------------------------------------------------------


async def test_every_transition_leaves_its_event(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock, max_attempts=5)
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: claim_one(engine, "w1", lease_seconds=10),
        lambda: engine.heartbeat(job.id, "w1", progress=10),
        lambda: engine.fail_job(job.id, "w1", "boom"),
        lambda: claim_one(engine, "w2", lease_seconds=10),
        lambda: engine.cancel_job(job.id),
        lambda: engine.fail_job(job.id, "w2", "stopped"),
        lambda: engine.retry_job(job.id),
        lambda: claim_one(engine, "w3", lease_seconds=10),
        lambda: _expire_and_rescue(engine, clock),
        lambda: claim_one(engine, "w3", lease_seconds=10),
        lambda: engine.release_job(job.id, "w3"),
        lambda: claim_one(engine, "w4", lease_seconds=10),
        lambda: engine.complete_job(job.id, "w4"),
    ]
    times = [clock.now() - seconds(1)]  # created a second ago
    for step in steps:
        await step()
        times.append(clock.now())
        clock.advance(2)
    events = await engine.list_job_events(job.id)
    assert [(e.from_status, e.to_status, e.actor, e.detail) for e in events] == [
        (None, S.PENDING, "client", None),
        (S.PENDING, S.RUNNING, "w1", None),
        (S.RUNNING, S.PENDING, "w1", "boom"),
        (S.PENDING, S.RUNNING, "w2", None),
        (S.RUNNING, S.CANCELLING, "client", None),
        (S.CANCELLING, S.CANCELLED, "w2", "stopped"),
        (S.CANCELLED, S.PENDING, "client", None),
        (S.PENDING, S.RUNNING, "w3", None),
        (S.RUNNING, S.PENDING, "rescuer", "lease expired"),
        (S.PENDING, S.RUNNING, "w3", None),
        (S.RUNNING, S.PENDING, "w3", "released by a stopping worker"),
        (S.PENDING, S.RUNNING, "w4", None),
        (S.RUNNING, S.COMPLETED, "w4", None),
    ]
    del times[2]  # the heartbeat left no event
    assert [e.at for e in events] == times


async def _expire_and_rescue(engine: OrchestrationEngine, clock: ManualClock) -> None:
    clock.advance(11)
    assert len(await engine.rescue_expired_leases()) == 1


# -- validation -----------------------------------------------------------------------

TOO_LONG_ERROR = "é" * 4097  # 4097 characters, 8194 bytes of UTF-8
TOO_LARGE_RESULT = {"text": "a" * (1024 * 1024)}
Call = Callable[[OrchestrationEngine, UUID], Awaitable[Any]]
REFUSED: dict[str, Call] = {
    "claim worker ''": lambda e, _: e.claim_jobs(""),
    "claim worker 256": lambda e, _: e.claim_jobs("w" * 256),
    "claim limit 0": lambda e, _: e.claim_jobs("w1", limit=0),
    "claim limit 101": lambda e, _: e.claim_jobs("w1", limit=101),
    "claim lease 4": lambda e, _: e.claim_jobs("w1", lease_seconds=4),
    "claim lease 3601": lambda e, _: e.claim_jobs("w1", lease_seconds=3601),
    "heartbeat worker ''": lambda e, job_id: e.heartbeat(job_id, ""),
    "heartbeat worker 256": lambda e, job_id: e.heartbeat(job_id, "w" * 256),
    "heartbeat lease 4": lambda e, job_id: e.heartbeat(job_id, "w1", lease_seconds=4),
    "heartbeat lease 3601": lambda e, job_id: e.heartbeat(job_id, "w1", lease_seconds=3601),
    "heartbeat progress 101": lambda e, job_id: e.heartbeat(job_id, "w1", progress=101),
    "heartbeat progress -1": lambda e, job_id: e.heartbeat(job_id, "w1", progress=-1),
    "complete worker ''": lambda e, job_id: e.complete_job(job_id, ""),
    "complete result 1 MiB": lambda e, job_id: e.complete_job(
        job_id, "w1", result=TOO_LARGE_RESULT
    ),
    "fail worker 256": lambda e, job_id: e.fail_job(job_id, "w" * 256, "boom"),
    "fail error 8194 bytes": lambda e, job_id: e.fail_job(job_id, "w1", TOO_LONG_ERROR),
    "release worker ''": lambda e, job_id: e.release_job(job_id, ""),
}


@pytest.mark.parametrize("call", list(REFUSED))
async def test_invalid_worker_calls_are_refused_and_change_nothing(
    engine: OrchestrationEngine, clock: ManualClock, call: str
) -> None:
    held = await new_job(engine, clock)
    pending = await new_job(engine, clock)
    await claim_one(engine, "w1")
    before = await snapshot(engine, held.id, pending.id)
    with pytest.raises(ValidationFailed):
        await REFUSED[call](engine, held.id)
    assert await snapshot(engine, held.id, pending.id) == before


async def test_values_at_the_limits_are_accepted(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    job = await new_job(engine, clock)
    worker = "w" * 255
    await claim_one(engine, worker, limit=100, lease_seconds=5)
    await engine.heartbeat(job.id, worker, lease_seconds=3600, progress=100)
    await engine.heartbeat(job.id, worker, progress=0)
    failed = await engine.fail_job(job.id, worker, "é" * 4096)  # 8192 bytes
    assert failed.last_error == "é" * 4096
    clock.advance(1)
    assert (await claim_one(engine, "w1", lease_seconds=3600)).worker_id == "w1"
