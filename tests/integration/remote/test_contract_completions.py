"""`complete_jobs` on both engines: many completions at once, each refused alone, with
the same errors whether the engine is in this process or behind `chute serve`."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import pytest
from chute.application import ClaimFilter, JobNotFound, ValidationFailed
from chute.domain import Job, JobStatus, LeaseNotHeld

from tests.integration.remote.conftest import Engine
from tests.integration.remote.test_contract import new, running

MIB = 1024 * 1024


async def test_complete_many_refuses_each_bad_completion_alone(engine: Engine, queue: str) -> None:
    good, invalid, other = [await running(engine, queue) for _ in range(3)]
    not_ours = await running(engine, queue, "w2")
    missing = uuid4()

    outcomes = await engine.complete_jobs(
        "w1",
        [
            (good.id, {"pages": 3}),
            (missing, None),
            (not_ours.id, None),
            (invalid.id, {"text": "a" * MIB}),
            (other.id, None),
        ],
    )

    done = [outcomes[0], outcomes[4]]
    assert all(isinstance(job, Job) and job.status is JobStatus.COMPLETED for job in done)
    assert isinstance(outcomes[0], Job) and outcomes[0].result == {"pages": 3}
    assert isinstance(outcomes[1], JobNotFound) and outcomes[1].job_id == missing
    assert isinstance(outcomes[2], LeaseNotHeld) and outcomes[2].job_id == not_ours.id
    assert isinstance(outcomes[3], ValidationFailed)
    assert [e.loc for e in outcomes[3].errors] == [("result",)]
    assert (await engine.get_job(invalid.id)).status is JobStatus.RUNNING
    assert (await engine.get_job(not_ours.id)).worker_id == "w2"


async def test_complete_many_completes_a_job_named_twice_once(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)

    first, second = await engine.complete_jobs("w1", [(job.id, {"n": 1}), (job.id, {"n": 2})])

    assert isinstance(first, Job) and first.result == {"n": 1}
    assert isinstance(second, LeaseNotHeld)
    assert (await engine.get_job(job.id)).result == {"n": 1}


async def test_complete_many_with_a_bad_worker_id_refuses_all(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)

    with pytest.raises(ValidationFailed) as refused:
        await engine.complete_jobs("", [(job.id, None)])

    assert [e.loc for e in refused.value.errors] == [("worker_id",)]
    assert (await engine.get_job(job.id)).status is JobStatus.RUNNING


async def test_complete_many_takes_more_than_a_request_holds(engine: Engine, queue: str) -> None:
    for n in range(17):
        await engine.create_job(new(queue, n))
    mine = ClaimFilter(queues=frozenset({queue}))
    held = await engine.claim_jobs("w1", limit=17, filter=mine)
    big = {"text": "é" * (MIB // 2 - 20)}  # just under 1 MiB of UTF-8: 17 are over 16 MiB
    missing = [(uuid4(), None) for _ in range(120)]  # over 100 ids

    outcomes = await engine.complete_jobs("w1", [*missing, *[(job.id, big) for job in held]])

    assert all(isinstance(outcome, JobNotFound) for outcome in outcomes[:120])
    assert [o.status for o in outcomes[120:] if isinstance(o, Job)] == [JobStatus.COMPLETED] * 17


async def test_a_result_that_is_not_json_refuses_its_completion_alone(
    engine: Engine, queue: str
) -> None:
    first, second = [await running(engine, queue) for _ in range(2)]

    outcomes = await engine.complete_jobs(
        "w1", [(first.id, {"at": datetime.now()}), (second.id, None)]
    )

    assert isinstance(outcomes[0], ValidationFailed)
    assert [e.loc for e in outcomes[0].errors] == [("result",)]
    assert isinstance(outcomes[1], Job) and outcomes[1].status is JobStatus.COMPLETED
    assert (await engine.get_job(first.id)).status is JobStatus.RUNNING


async def test_complete_and_claim_completes_then_claims_on_both_engines(
    engine: Engine, queue: str
) -> None:
    held = [await running(engine, queue) for _ in range(2)]
    waiting = [(await engine.create_job(new(queue))).job for _ in range(3)]
    mine = ClaimFilter(queues=frozenset({queue}))

    outcomes, claimed = await engine.complete_and_claim(
        "w1", [(held[0].id, {"n": 1}), (uuid4(), None), (held[1].id, None)],
        limit=2, lease_seconds=30, filter=mine,
    )  # fmt: skip

    assert [type(outcome).__name__ for outcome in outcomes] == ["Job", "JobNotFound", "Job"]
    assert [job.id for job in claimed] == [job.id for job in waiting[:2]]
    assert all((job.status, job.worker_id) == (JobStatus.RUNNING, "w1") for job in claimed)
    assert (await engine.get_job(held[0].id)).result == {"n": 1}
    with pytest.raises(ValidationFailed):  # refused whole, before any completion
        await engine.complete_and_claim(
            "w1", [(claimed[0].id, None)], limit=0, lease_seconds=30, filter=mine
        )
    assert (await engine.get_job(claimed[0].id)).status is JobStatus.RUNNING
