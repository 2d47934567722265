"""Many workers and rescuers at once, each on its own connection: every job is claimed
once and rescued once, and a job is never both finished by its worker and rescued.

PostgreSQL does it with `FOR UPDATE SKIP LOCKED`; SQLite (a file, several engines) by
`BEGIN IMMEDIATE`, which makes writers wait their turn: no "database is locked" may
surface (it would be a `ServiceUnavailable`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.system import ManualClock
from chute.application import OrchestrationEngine
from chute.domain import Job, JobStatus, LeaseNotHeld, Priority

from tests.factories import at, make_engine, make_new_job

S = JobStatus
CLAIMERS, JOBS = 8, 300
RESCUERS, EXPIRED = 4, 100
LEASE = 10


@asynccontextmanager
async def engines(url: str, clocks: list[ManualClock]) -> AsyncIterator[list[OrchestrationEngine]]:
    """One engine per clock, each on its own `SqlDatabase` (its own pool): one client each."""
    databases = [SqlDatabase(create_engine_for(url)) for _ in clocks]
    try:
        yield [
            make_engine(uow=db, clock=clock) for db, clock in zip(databases, clocks, strict=True)
        ]
    finally:
        for db in databases:
            await db.dispose()


async def create(engine: OrchestrationEngine, n: int) -> list[UUID]:
    priorities = list(Priority)
    new = [
        make_new_job(source_uri=f"https://example.org/{i}", priority=priorities[i % 4])
        for i in range(n)
    ]
    return [job.id for job in (await engine.create_jobs(new)).jobs]


async def until_empty(seed: int, step: Callable[[int], Awaitable[list[Job]]]) -> list[Job]:
    """Call `step(limit)` with limits of 1 to 5 until it returns nothing."""
    limits = random.Random(seed)
    done: list[Job] = []
    while batch := await step(limits.randint(1, 5)):
        done += batch
    return done


async def transitions(engine: OrchestrationEngine, job_id: UUID) -> list[tuple[Any, ...]]:
    return [(e.from_status, e.to_status, e.actor) for e in await engine.list_job_events(job_id)]


def report(what: str, url: str, seconds: float, **figures: object) -> None:
    detail = ", ".join(f"{key}={value}" for key, value in figures.items())
    print(f"\n{what} on {url.split(':', 1)[0]}: {detail}, {seconds:.2f} s")


async def test_concurrent_claimers_claim_every_job_exactly_once(sql_url: str) -> None:
    clock = ManualClock(at(0))
    async with engines(sql_url, [clock] * CLAIMERS) as claimers:
        made = await create(claimers[0], JOBS)

        def claimer(n: int) -> Awaitable[list[Job]]:
            engine, worker = claimers[n], f"w{n}"
            return until_empty(n, lambda limit: engine.claim_jobs(worker, limit=limit))

        started = time.perf_counter()
        results = await asyncio.gather(*(claimer(n) for n in range(CLAIMERS)))
        elapsed = time.perf_counter() - started

        claimed = [job.id for jobs in results for job in jobs]
        assert len(claimed) == len(set(claimed)) == JOBS
        assert set(claimed) == set(made)
        for n, jobs in enumerate(results):
            for job in jobs:
                assert await transitions(claimers[0], job.id) == [
                    (None, S.PENDING, "client"),
                    (S.PENDING, S.RUNNING, f"w{n}"),  # one claim, by the one that got it
                ]
        per_claimer = sorted(len(jobs) for jobs in results)
        report("claim", sql_url, elapsed, claimers=CLAIMERS, jobs=JOBS,
               duplicates=len(claimed) - len(set(claimed)), per_claimer=per_claimer)  # fmt: skip


async def test_concurrent_rescuers_rescue_every_expired_lease_exactly_once(sql_url: str) -> None:
    clock = ManualClock(at(0))
    async with engines(sql_url, [clock] * RESCUERS) as rescuers:
        made = await create(rescuers[0], EXPIRED)
        assert len(await rescuers[0].claim_jobs("w0", limit=100, lease_seconds=LEASE)) == EXPIRED
        clock.advance(LEASE + 1)

        def rescuer(n: int) -> Awaitable[list[Job]]:
            engine = rescuers[n]
            return until_empty(n, lambda limit: engine.rescue_expired_leases(limit=limit))

        started = time.perf_counter()
        results = await asyncio.gather(*(rescuer(n) for n in range(RESCUERS)))
        elapsed = time.perf_counter() - started

        rescued = [job.id for jobs in results for job in jobs]
        assert len(rescued) == len(set(rescued)) == EXPIRED
        assert set(rescued) == set(made)
        for job_id in made:
            assert await transitions(rescuers[0], job_id) == [
                (None, S.PENDING, "client"),
                (S.PENDING, S.RUNNING, "w0"),
                (S.RUNNING, S.PENDING, "rescuer"),
            ]
        report("rescue", sql_url, elapsed, rescuers=RESCUERS, jobs=EXPIRED,
               duplicates=len(rescued) - len(set(rescued)),
               per_rescuer=sorted(len(jobs) for jobs in results))  # fmt: skip


async def test_a_job_is_either_completed_by_its_worker_or_rescued_never_both(
    sql_url: str,
) -> None:
    # The workers' clock says the lease is live, the rescuers' that it has ended (clock
    # skew, or a worker that reports at the last moment): the row lock decides.
    start = at(0)
    workers_clock, rescuers_clock = ManualClock(start), ManualClock(start)
    clocks = [workers_clock] * 4 + [rescuers_clock] * 2
    async with engines(sql_url, clocks) as (*workers, rescuer_a, rescuer_b):
        made = await create(workers[0], EXPIRED)
        await workers[0].claim_jobs("w0", limit=100, lease_seconds=LEASE)
        workers_clock.advance(LEASE - 1)
        rescuers_clock.advance(LEASE + 1)

        async def complete(engine: OrchestrationEngine, job_ids: list[UUID]) -> set[UUID]:
            completed = set()
            for job_id in job_ids:
                try:
                    await engine.complete_job(job_id, "w0")
                    completed.add(job_id)
                except LeaseNotHeld:
                    pass  # rescued first
            return completed

        def rescue(engine: OrchestrationEngine, seed: int) -> Awaitable[list[Job]]:
            return until_empty(seed, lambda limit: engine.rescue_expired_leases(limit=limit))

        *completions, rescued_a, rescued_b = await asyncio.gather(
            *(complete(engine, made[n::4]) for n, engine in enumerate(workers)),
            rescue(rescuer_a, 1),
            rescue(rescuer_b, 2),
        )
        completed = set().union(*completions)
        rescued = [job.id for job in rescued_a + rescued_b]
        assert len(rescued) == len(set(rescued))
        assert completed | set(rescued) == set(made)
        assert not completed & set(rescued)
        for job_id in made:
            last = (await transitions(workers[0], job_id))[2:]
            if job_id in completed:
                assert last == [(S.RUNNING, S.COMPLETED, "w0")]
            else:
                assert last == [(S.RUNNING, S.PENDING, "rescuer")]
