"""The engine's use cases, the same on `OrchestrationEngine` and on `RemoteEngine`:
code written against one runs against the other unchanged, results and errors alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest
from chute.application import (
    ClaimFilter,
    ContentNotFound,
    IdempotencyKeyReused,
    InvalidCursor,
    JobFilter,
    JobNotFound,
    JobSelection,
    JobSort,
    NewJob,
    PayloadTooLarge,
    QueueChange,
    QueueNotFound,
    ValidationFailed,
)
from chute.domain import InvalidTransition, Job, JobStatus, LeaseNotHeld, Mode, SourceType

from tests.integration.remote.conftest import MAX_FILE, Engine

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def new(queue: str, n: int = 0, **fields: object) -> NewJob:
    uri = f"https://example.org/{n}.pdf"
    return NewJob(source_type=SourceType.URL, source_uri=uri, queue=queue, **fields)  # type: ignore[arg-type]


async def running(engine: Engine, queue: str, worker: str = "w1") -> Job:
    await engine.create_job(new(queue))
    [job] = await engine.claim_jobs(worker, filter=ClaimFilter(queues=frozenset({queue})))
    return job


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# -- creating and reading ----------------------------------------------------------------------


async def test_create_get_and_replay_by_idempotency_key(engine: Engine, queue: str) -> None:
    key = f"key-{uuid4()}"
    made = await engine.create_job(new(queue, metadata={"n": 1}), idempotency_key=key)
    again = await engine.create_job(new(queue, metadata={"n": 1}), idempotency_key=key)

    assert (made.replayed, again.replayed, again.job.id) == (False, True, made.job.id)
    job = await engine.get_job(made.job.id)
    assert (job.status, job.queue, job.metadata) == (JobStatus.PENDING, queue, {"n": 1})
    assert job.created_at.tzinfo is not None
    with pytest.raises(IdempotencyKeyReused):
        await engine.create_job(new(queue, metadata={"n": 2}), idempotency_key=key)


async def test_create_many_in_order_and_bad_items_named_by_index(
    engine: Engine, queue: str
) -> None:
    made = await engine.create_jobs([new(queue, n) for n in range(3)])

    assert [job.source_uri for job in made.jobs] == [
        f"https://example.org/{n}.pdf" for n in range(3)
    ]
    bad = [new(queue), NewJob(source_type=SourceType.URL, source_uri="ftp://x/a", queue=queue)]
    with pytest.raises(ValidationFailed) as refused:
        await engine.create_jobs(bad)
    assert [error.loc for error in refused.value.errors] == [(1, "source_uri")]


async def test_a_bad_job_is_refused_naming_its_field(engine: Engine, queue: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await engine.create_job(new(queue, max_attempts=0))

    assert [error.loc for error in refused.value.errors] == [("max_attempts",)]


async def test_an_unknown_job_is_not_found(engine: Engine) -> None:
    missing = uuid4()
    for call in (engine.get_job, engine.list_job_events, engine.cancel_job, engine.retry_job):
        with pytest.raises(JobNotFound) as refused:
            await call(missing)
        assert refused.value.job_id == missing


async def test_list_filters_counts_and_walks_by_cursor(engine: Engine, queue: str) -> None:
    made = (await engine.create_jobs([new(queue, n) for n in range(7)])).jobs
    await engine.create_job(new(f"{queue}-other"))
    mine = JobFilter(queues=frozenset({queue}))

    page = await engine.list_jobs(filter=mine, sort=JobSort.OLDEST, limit=3)
    seen = [job.id for job in page.items]
    assert (page.total, page.total_exact) == (7, True)
    while page.next_cursor is not None:
        page = await engine.list_jobs(
            filter=mine, sort=JobSort.OLDEST, limit=3, cursor=page.next_cursor, count=False
        )
        assert page.total is None
        seen += [job.id for job in page.items]

    assert seen == [job.id for job in made]
    with pytest.raises(InvalidCursor):
        await engine.list_jobs(filter=mine, cursor="not-a-cursor")
    with pytest.raises(ValidationFailed):
        await engine.list_jobs(limit=0)


async def test_events_tell_each_status_change(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)
    await engine.complete_job(job.id, "w1", result={"ok": True})

    events = await engine.list_job_events(job.id)

    assert [(e.from_status, e.to_status) for e in events] == [
        (None, JobStatus.PENDING),
        (JobStatus.PENDING, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.COMPLETED),
    ]
    assert events[-1].actor == "w1" and events[0].job_id == job.id


# -- managing ----------------------------------------------------------------------------------


async def test_cancel_says_whether_it_changed_the_job_and_retry_queues_it_again(
    engine: Engine, queue: str
) -> None:
    job = (await engine.create_job(new(queue))).job

    first, second = await engine.cancel_job(job.id), await engine.cancel_job(job.id)

    assert (first.changed, first.job.status) == (True, JobStatus.CANCELLED)
    assert (second.changed, second.job.status) == (False, JobStatus.CANCELLED)
    assert (await engine.retry_job(job.id)).status is JobStatus.PENDING
    held = await running(engine, queue)
    stopping = await engine.cancel_job(held.id)
    assert (stopping.changed, stopping.job.status) == (True, JobStatus.CANCELLING)


async def test_a_finished_job_cannot_be_cancelled(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)
    await engine.complete_job(job.id, "w1")

    with pytest.raises(InvalidTransition) as refused:
        await engine.cancel_job(job.id)

    assert (refused.value.current, refused.value.target) == (
        JobStatus.COMPLETED,
        JobStatus.CANCELLED,
    )
    assert refused.value.job_id == job.id


async def test_bulk_actions_by_ids_and_by_filter(engine: Engine, queue: str) -> None:
    jobs = (await engine.create_jobs([new(queue, n) for n in range(4)])).jobs
    by_ids = JobSelection(ids=(jobs[0].id, uuid4()))
    by_filter = JobSelection(filter=JobFilter(queues=frozenset({queue})), limit=2)

    cancelled = await engine.cancel_jobs(by_ids)
    more = await engine.cancel_jobs(by_filter)
    retried = await engine.retry_jobs(JobSelection(filter=JobFilter(queues=frozenset({queue}))))

    assert (cancelled.changed, cancelled.unchanged) == (1, 1)
    assert (more.changed, more.more) == (2, True)
    assert (retried.changed, retried.more) == (3, False)
    with pytest.raises(ValidationFailed):
        await engine.cancel_jobs(JobSelection())


async def test_queues_are_seen_and_changed(engine: Engine, queue: str) -> None:
    await engine.create_jobs([new(queue, n) for n in range(2)])

    view = await engine.get_queue(queue)
    paused = await engine.update_queue(
        queue, QueueChange(paused=True, concurrency_limit=3, set_concurrency_limit=True)
    )

    assert (view.paused, view.counts.pending, view.concurrency_limit) == (False, 2, None)
    assert (paused.paused, paused.concurrency_limit) == (True, 3)
    assert queue in [q.name for q in await engine.list_queues()]
    assert await engine.claim_jobs("w1", filter=ClaimFilter(queues=frozenset({queue}))) == []
    with pytest.raises(QueueNotFound):
        await engine.get_queue(f"{queue}-none")


# -- working -----------------------------------------------------------------------------------


async def test_claim_heartbeat_complete(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)

    beat = await engine.heartbeat(job.id, "w1", progress=50, progress_message="half")
    done = await engine.complete_job(job.id, "w1", result={"pages": 3})

    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "w1", 1)
    assert (beat.progress, beat.progress_message) == (50, "half")
    assert (done.status, done.result) == (JobStatus.COMPLETED, {"pages": 3})


async def test_complete_many_answers_each_alone(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)
    missing = uuid4()

    outcomes = await engine.complete_jobs("w1", [(job.id, None), (missing, None)])

    assert isinstance(outcomes[0], Job) and outcomes[0].status is JobStatus.COMPLETED
    assert isinstance(outcomes[1], JobNotFound)


async def test_fail_retryable_or_not(engine: Engine, queue: str) -> None:
    first = await running(engine, queue)
    again = await engine.fail_job(first.id, "w1", "boom")
    second = await running(engine, queue)
    over = await engine.fail_job(second.id, "w1", "bad input", retryable=False)

    assert (again.status, again.last_error, again.attempts) == (JobStatus.PENDING, "boom", 1)
    assert again.run_after is not None
    assert (over.status, over.last_error) == (JobStatus.FAILED, "bad input")


async def test_release_gives_a_job_back(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)

    released = await engine.release_job(job.id, "w1")

    assert (released.status, released.worker_id) == (JobStatus.PENDING, None)
    assert (await running(engine, queue, "w2")).id == job.id


async def test_a_report_without_the_lease_is_refused(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)
    reports = [
        engine.heartbeat(job.id, "w2"),
        engine.complete_job(job.id, "w2"),
        engine.fail_job(job.id, "w2", "boom"),
        engine.release_job(job.id, "w2"),
        engine.store_content(job.id, "w2", "a.pdf", chunks(PDF)),
        engine.redetect_content(job.id, "w2", Mode.FAST),
    ]
    for report in reports:
        with pytest.raises(LeaseNotHeld) as refused:
            await report
        assert (refused.value.job_id, refused.value.worker_id) == (job.id, "w2")
    assert (await engine.get_job(job.id)).status is JobStatus.RUNNING
    with pytest.raises(ValidationFailed):
        await engine.claim_jobs("")


async def test_stored_content_reads_back_and_is_detected_again(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)
    data = PDF + bytes(range(256)) * 4096  # 1 MiB and more, in many chunks

    stored = await engine.store_content(job.id, "w1", "../a report.pdf", chunks(data))
    again = await engine.redetect_content(job.id, "w1", Mode.FAST)
    opened, content = await engine.open_content(job.id)

    assert (stored.file_name, stored.file_size) == ("a report.pdf", len(data))
    assert stored.detection is not None and stored.detection.size == len(data)
    assert again.detection is not None and again.detection.detector == "libmagic"
    assert opened.id == job.id
    assert b"".join([chunk async for chunk in content]) == data


async def test_content_that_is_not_there_or_too_large(engine: Engine, queue: str) -> None:
    job = await running(engine, queue)

    with pytest.raises(ContentNotFound):
        await engine.open_content(job.id)
    with pytest.raises(ContentNotFound):
        await engine.redetect_content(job.id, "w1", Mode.FAST)
    with pytest.raises(PayloadTooLarge):
        await engine.store_content(job.id, "w1", "big", chunks(bytes(MAX_FILE + 1)))
    assert (await engine.get_job(job.id)).file_size is None
