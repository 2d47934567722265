"""Queues on every database (memory, SQLite, PostgreSQL): one contract.

Jobs go to named queues; a paused queue keeps its jobs from claims until resumed; a
limited queue never has more than its limit of jobs held; `run_after` holds a job back
until its time; lists filter by queue; the queue views count what each holds.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from chute.adapters.system import ManualClock
from chute.application import (
    ClaimFilter,
    JobFilter,
    OrchestrationEngine,
    QueueChange,
    QueueNotFound,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.domain import Job, JobStatus, Priority

from tests.factories import at, make_engine, make_new_job

S = JobStatus
START = at(1000)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def engine(database: UnitOfWorkFactory, clock: ManualClock) -> OrchestrationEngine:
    return make_engine(uow=database, clock=clock, jitter=lambda: 1.0)


async def new_jobs(
    engine: OrchestrationEngine, clock: ManualClock, n: int = 1, **fields: Any
) -> list[Job]:
    """`n` jobs, each created a second after the one before."""
    made = []
    for _ in range(n):
        made.append((await engine.create_job(make_new_job(**fields))).job)
        clock.advance(1)
    return made


def pause(paused: bool = True) -> QueueChange:
    return QueueChange(paused=paused)


def limit(n: int | None) -> QueueChange:
    return QueueChange(concurrency_limit=n, set_concurrency_limit=True)


async def claim_ids(engine: OrchestrationEngine, n: int = 10, **filt: Any) -> set[Any]:
    jobs = await engine.claim_jobs("w1", limit=n, filter=ClaimFilter(**filt))
    return {job.id for job in jobs}


# -- queue names ------------------------------------------------------------------------


async def test_jobs_go_to_queue_default_unless_told(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    [plain] = await new_jobs(engine, clock)
    [mailed] = await new_jobs(engine, clock, queue="mail.out-2")

    assert (await engine.get_job(plain.id)).queue == "default"
    assert (await engine.get_job(mailed.id)).queue == "mail.out-2"
    assert (await engine.get_job(mailed.id)).schedule is None


@pytest.mark.parametrize("name", ["", "A", "with space", "x" * 65, "ü", "a/b"])
async def test_an_invalid_queue_name_is_refused_naming_the_field(
    engine: OrchestrationEngine, name: str
) -> None:
    with pytest.raises(ValidationFailed) as e:
        await engine.create_job(make_new_job(queue=name))
    assert [error.loc for error in e.value.errors] == [("queue",)]
    assert (await engine.list_queues()) == []


async def test_run_after_more_than_366_days_ahead_is_refused(
    engine: OrchestrationEngine,
) -> None:
    with pytest.raises(ValidationFailed) as e:
        await engine.create_job(make_new_job(run_after=START + timedelta(days=366, seconds=1)))
    assert [error.loc for error in e.value.errors] == [("run_after",)]
    made = await engine.create_job(make_new_job(run_after=START + timedelta(days=366)))
    assert made.job.run_after == START + timedelta(days=366)


# -- run_after ------------------------------------------------------------------------------


async def test_a_job_is_not_claimed_before_its_run_after_and_is_claimed_after(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    [later] = await new_jobs(engine, clock, run_after=START + timedelta(seconds=30))

    assert await claim_ids(engine) == set()
    clock.advance(28)  # 29 seconds after START: one second early
    assert await claim_ids(engine) == set()
    clock.advance(1)
    assert await claim_ids(engine) == {later.id}


async def test_a_past_run_after_means_now(engine: OrchestrationEngine, clock: ManualClock) -> None:
    [job] = await new_jobs(engine, clock, run_after=START - timedelta(days=3))

    assert job.run_after is None
    assert await claim_ids(engine) == {job.id}


# -- claims by queue ------------------------------------------------------------------------


async def test_a_claim_takes_only_the_queues_it_names(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    [a] = await new_jobs(engine, clock, queue="a")
    [b] = await new_jobs(engine, clock, queue="b")
    [c] = await new_jobs(engine, clock, queue="c")

    assert await claim_ids(engine, queues=frozenset({"a", "c"})) == {a.id, c.id}
    assert await claim_ids(engine) == {b.id}


async def test_a_claim_of_several_queues_keeps_priority_then_age_order(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.update_queue("limited", limit(5))
    [old] = await new_jobs(engine, clock, queue="free")
    [urgent] = await new_jobs(engine, clock, queue="limited", priority=Priority.URGENT)
    [newer] = await new_jobs(engine, clock, queue="limited")

    claimed = await engine.claim_jobs("w1", limit=3)

    assert [job.id for job in claimed] == [urgent.id, old.id, newer.id]


@pytest.mark.parametrize("others", [2, 12])  # each queue looked at alone, or all at once
async def test_beside_a_paused_queue_claims_keep_the_order_across_the_others(
    engine: OrchestrationEngine, clock: ManualClock, others: int
) -> None:
    """A skipped queue's backlog is passed over, and what is claimed of the others is
    the same as without it: the best jobs across them, in priority then age order."""
    await engine.update_queue("held", pause())
    await new_jobs(engine, clock, 3, queue="held", priority=Priority.URGENT)
    made = [
        (await new_jobs(engine, clock, queue=f"q{n}", priority=priority))[0]
        for n in range(others)
        for priority in (Priority.LOW, Priority.HIGH)
    ]
    best = sorted(made, key=lambda job: (-job.priority.rank, job.created_at, job.id))

    first = await engine.claim_jobs("w1", limit=3, filter=ClaimFilter())
    second = await engine.claim_jobs("w1", limit=3, filter=ClaimFilter())

    assert [job.id for job in first + second] == [job.id for job in best[:6]]
    named = ClaimFilter(queues=frozenset({"held", "q1"}))
    rest = [job.id for job in await engine.claim_jobs("w1", limit=5, filter=named)]
    assert rest == [job.id for job in best[6:] if job.queue == "q1"]


# -- pause --------------------------------------------------------------------------------


async def test_a_paused_queue_takes_jobs_but_none_is_claimed_until_it_resumes(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    [running] = await new_jobs(engine, clock, queue="q")
    assert await claim_ids(engine) == {running.id}
    await engine.update_queue("q", pause())
    waiting = await new_jobs(engine, clock, 2, queue="q")
    [other] = await new_jobs(engine, clock, queue="other")

    assert await claim_ids(engine) == {other.id}
    assert await claim_ids(engine, queues=frozenset({"q"})) == set()
    assert (await engine.get_job(running.id)).status is S.RUNNING  # it goes on
    await engine.complete_job(running.id, "w1")

    view = await engine.update_queue("q", pause(False))
    assert not view.paused
    assert await claim_ids(engine) == {job.id for job in waiting}


# -- concurrency limits ---------------------------------------------------------------------


async def test_a_limited_queue_never_has_more_jobs_held_than_its_limit(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await engine.update_queue("q", limit(2))
    jobs = await new_jobs(engine, clock, 5, queue="q")

    first = await claim_ids(engine, 10)
    assert first == {jobs[0].id, jobs[1].id}
    assert await claim_ids(engine, 10) == set()

    await engine.cancel_job(jobs[0].id)  # cancelling is held still: no room yet
    assert await claim_ids(engine, 10) == set()
    await engine.fail_job(jobs[0].id, "w1", "stopped")  # now cancelled
    assert await claim_ids(engine, 10) == {jobs[2].id}
    await engine.complete_job(jobs[1].id, "w1")
    await engine.update_queue("q", limit(None))  # lifted
    assert await claim_ids(engine, 10) == {jobs[3].id, jobs[4].id}


async def test_a_limit_set_before_any_job_holds_when_jobs_arrive(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    view = await engine.update_queue("later", limit(1))
    assert (view.name, view.paused, view.concurrency_limit) == ("later", False, 1)
    await new_jobs(engine, clock, 3, queue="later")

    assert len(await claim_ids(engine, 10)) == 1


async def test_a_lower_limit_than_the_jobs_held_claims_none_and_keeps_them(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await new_jobs(engine, clock, 4, queue="q")
    assert len(await claim_ids(engine, 3)) == 3
    await engine.update_queue("q", limit(1))

    assert await claim_ids(engine, 10) == set()
    assert (await engine.get_queue("q")).counts.running == 3


async def test_a_lowered_limit_holds_as_jobs_end_and_a_raised_one_at_once(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    """10 held of a queue limited to 12, lowered to 3: none is claimed until fewer than 3
    are held (whichever end first), then the limit holds again; raised to 20, claims
    fill it at once."""
    await engine.update_queue("q", limit(12))
    jobs = await new_jobs(engine, clock, 40, queue="q")
    held = [job.id for job in await engine.claim_jobs("w1", limit=10)]
    assert len(held) == 10
    await engine.update_queue("q", limit(3))
    for job_id in held[::-1][:7]:  # the newest first: any of them may end first
        assert await claim_ids(engine, 10) == set()
        await engine.complete_job(job_id, "w1")
    assert await claim_ids(engine, 10) == set()  # 3 held: the limit
    await engine.complete_job(held[0], "w1")
    assert len(await claim_ids(engine, 10)) == 1
    await engine.update_queue("q", limit(20))
    assert len(await claim_ids(engine, 100)) == 17  # 3 held, 17 more
    assert (await engine.get_queue("q")).counts.running == 20
    assert len(jobs) - 10 - 1 - 17 == (await engine.get_queue("q")).counts.pending


@pytest.mark.parametrize("bad", [0, 10_001, -1])
async def test_a_limit_outside_1_to_10000_is_refused(engine: OrchestrationEngine, bad: int) -> None:
    with pytest.raises(ValidationFailed) as e:
        await engine.update_queue("q", limit(bad))
    assert [error.loc for error in e.value.errors] == [("concurrency_limit",)]
    with pytest.raises(QueueNotFound):
        await engine.get_queue("q")


# -- views --------------------------------------------------------------------------------


async def test_queue_views_count_each_state_and_the_last_hour(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    oldest = (await new_jobs(engine, clock, 3, queue="q"))[0]
    await new_jobs(engine, clock, 2, queue="q", run_after=START + timedelta(hours=2))
    await new_jobs(engine, clock, 1, queue="other")
    [done, failed, stopping] = await engine.claim_jobs(
        "w1", limit=3, filter=ClaimFilter(queues=frozenset({"q"}))
    )
    # The three claimed are the oldest three: the rest are scheduled for later.
    assert done.id == oldest.id
    await engine.complete_job(done.id, "w1")
    await engine.fail_job(failed.id, "w1", "no", retryable=False)
    await engine.cancel_job(stopping.id)
    ready = await new_jobs(engine, clock, 2, queue="q")

    view = await engine.get_queue("q")
    assert (view.paused, view.concurrency_limit) == (False, None)
    c = view.counts
    assert (c.pending, c.scheduled, c.running, c.cancelling) == (2, 2, 0, 1)
    assert (c.completed_last_hour, c.failed_last_hour) == (1, 1)
    assert c.oldest_pending_at == ready[0].created_at

    clock.advance(3600)
    later = (await engine.get_queue("q")).counts
    assert (later.completed_last_hour, later.failed_last_hour) == (0, 0)


async def test_the_oldest_pending_job_is_the_oldest_due_one_of_any_priority(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await new_jobs(engine, clock, queue="q", run_after=START + timedelta(hours=1))  # oldest
    [due_low] = await new_jobs(engine, clock, queue="q", priority=Priority.LOW)
    await new_jobs(engine, clock, queue="q", priority=Priority.URGENT)
    await new_jobs(engine, clock, queue="q", run_after=START)  # due: its time has come
    [other] = await new_jobs(engine, clock, queue="other", priority=Priority.HIGH)

    views = {view.name: view.counts for view in await engine.list_queues()}

    assert (views["q"].pending, views["q"].scheduled) == (3, 1)
    assert views["q"].oldest_pending_at == due_low.created_at
    assert views["other"].oldest_pending_at == other.created_at
    clock.advance(2 * 3600)  # the scheduled one is due now, and the oldest
    counts = (await engine.get_queue("q")).counts
    assert (counts.pending, counts.scheduled) == (4, 0)
    assert counts.oldest_pending_at == START


async def test_the_list_names_every_queue_a_job_or_a_setting_names(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    await new_jobs(engine, clock, queue="b")
    [gone] = await new_jobs(engine, clock, queue="a")
    await engine.cancel_job(gone.id)  # an uncounted state still names its queue
    await engine.update_queue("c", pause())

    views = await engine.list_queues()

    assert [(v.name, v.paused, v.counts.pending) for v in views] == [
        ("a", False, 0),
        ("b", False, 1),
        ("c", True, 0),
    ]


async def test_an_unknown_queue_is_not_found(engine: OrchestrationEngine) -> None:
    with pytest.raises(QueueNotFound):
        await engine.get_queue("nothing")


async def test_a_change_keeps_what_it_does_not_name(engine: OrchestrationEngine) -> None:
    await engine.update_queue("q", QueueChange(paused=True, concurrency_limit=4,
                                               set_concurrency_limit=True))  # fmt: skip
    kept = await engine.update_queue("q", QueueChange())
    assert (kept.paused, kept.concurrency_limit) == (True, 4)


# -- lists --------------------------------------------------------------------------------


async def test_lists_filter_by_queue_and_an_unknown_one_is_empty(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    [a] = await new_jobs(engine, clock, queue="a")
    [b] = await new_jobs(engine, clock, queue="b")
    await new_jobs(engine, clock, queue="c")

    page = await engine.list_jobs(filter=JobFilter(queues=frozenset({"a", "b"})))
    assert {job.id for job in page.items} == {a.id, b.id}
    assert page.total == 2
    none = await engine.list_jobs(filter=JobFilter(queues=frozenset({"zzz"})))
    assert (none.items, none.total) == ([], 0)


async def test_a_claim_that_looks_twice_takes_each_job_once_and_keeps_every_limit(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    """`b` fills up on the claim's first look, so it looks again without `b`: the jobs of
    `a` it took on the first look are neither taken again nor left out of `a`'s count."""
    await engine.update_queue("a", limit(3))
    await engine.update_queue("b", limit(1))
    await new_jobs(engine, clock, 2, queue="b", priority=Priority.HIGH)
    a_jobs = await new_jobs(engine, clock, 5, queue="a")

    claimed = [job.id for job in await engine.claim_jobs("w1", limit=4)]

    assert len(claimed) == len(set(claimed)) == 4
    assert set(claimed) >= {job.id for job in a_jobs[:3]}
    assert (await engine.get_queue("a")).counts.running == 3
    assert (await engine.get_queue("b")).counts.running == 1
