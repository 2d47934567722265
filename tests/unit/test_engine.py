"""Each use case of OrchestrationEngine on the in-memory adapters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from chute.adapters.memory import MemoryDatabase, MemoryFileStore
from chute.adapters.system import ManualClock, UuidV7Generator
from chute.application import (
    ContentDetector,
    ContentSample,
    IdempotencyKeyReused,
    InvalidCursor,
    JobFilter,
    JobNotFound,
    JobSort,
    NewJob,
    OrchestrationEngine,
    PayloadTooLarge,
    TypeGuess,
    UnsupportedMediaType,
    UploadFile,
    UploadLimits,
    UploadOptions,
    ValidationFailed,
)
from chute.domain import InvalidTransition, JobStatus, Mode, Priority, SourceType

from tests.factories import make_engine


class PrefixDetector(ContentDetector):
    """A test double of the detector port: names content by its first bytes."""

    async def detect(self, sample: ContentSample) -> TypeGuess:
        if sample.head.startswith(b"%PDF"):
            return TypeGuess("application/pdf", "pdf", "document", 1.0, "prefix")
        return TypeGuess("text/plain", "txt", "text", 0.5, "prefix")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def files() -> MemoryFileStore:
    return MemoryFileStore()


def engine_with(
    clock: ManualClock, files: MemoryFileStore, **limits: object
) -> OrchestrationEngine:
    """An engine whose detectors answer by prefix, with upload limits `limits`."""
    detectors = {mode: PrefixDetector() for mode in Mode}
    return make_engine(
        files=files,
        clock=clock,
        detectors=detectors,
        limits=UploadLimits(**limits),  # type: ignore[arg-type]
    )


@pytest.fixture
def engine(clock: ManualClock, files: MemoryFileStore) -> OrchestrationEngine:
    return engine_with(clock, files)


def url_job(n: int = 0, **fields: object) -> NewJob:
    return NewJob(source_type=SourceType.URL, source_uri=f"https://example.org/{n}", **fields)  # type: ignore[arg-type]


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_create_job_persists_a_pending_job(engine: OrchestrationEngine) -> None:
    made = await engine.create_job(url_job(metadata={"tenant": "acme"}, priority=Priority.HIGH))
    job = await engine.get_job(made.job.id)
    assert job.status is JobStatus.PENDING and job.metadata == {"tenant": "acme"}
    assert job.priority is Priority.HIGH and job.attempts == 0 and not made.replayed


async def test_create_job_refuses_invalid_values(engine: OrchestrationEngine) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await engine.create_job(
            NewJob(source_type=SourceType.URL, source_uri="ftp://x/y", max_attempts=0)
        )
    assert {e.loc for e in refused.value.errors} == {("source_uri",), ("max_attempts",)}


async def test_create_jobs_is_all_or_nothing(engine: OrchestrationEngine) -> None:
    bad = [
        url_job(0),
        url_job(1),
        url_job(2),
        NewJob(source_type=SourceType.S3, source_uri="s3://x/k"),
    ]
    with pytest.raises(ValidationFailed) as refused:
        await engine.create_jobs(bad)
    assert refused.value.errors[0].loc == (3, "source_uri")
    assert (await engine.list_jobs()).total == 0
    made = await engine.create_jobs([url_job(i) for i in range(3)])
    assert [j.source_uri for j in made.jobs] == [f"https://example.org/{i}" for i in range(3)]


async def test_idempotency_key_replays_the_first_request(engine: OrchestrationEngine) -> None:
    first = await engine.create_job(url_job(), idempotency_key="k1")
    again = await engine.create_job(url_job(), idempotency_key="k1")
    assert again.replayed and again.job.id == first.job.id
    with pytest.raises(IdempotencyKeyReused):
        await engine.create_job(url_job(1), idempotency_key="k1")
    batch = await engine.create_jobs([url_job()], idempotency_key="k1")  # another scope
    assert not batch.replayed and (await engine.list_jobs()).total == 2


async def test_idempotency_key_expires_after_a_day(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    first = await engine.create_job(url_job(), idempotency_key="k1")
    clock.advance(timedelta(hours=24).total_seconds())
    again = await engine.create_job(url_job(1), idempotency_key="k1")
    assert not again.replayed and again.job.id != first.job.id


async def test_concurrent_requests_with_one_key_make_one_job(engine: OrchestrationEngine) -> None:
    results = await asyncio.gather(
        *[engine.create_job(url_job(), idempotency_key="same") for _ in range(20)]
    )
    assert len({r.job.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1


async def test_get_job_of_unknown_id_raises(engine: OrchestrationEngine) -> None:
    with pytest.raises(JobNotFound):
        await engine.get_job(UuidV7Generator().new_id())


async def test_cancel_pending_then_again_is_idempotent(engine: OrchestrationEngine) -> None:
    job = (await engine.create_job(url_job())).job
    first = await engine.cancel_job(job.id)
    second = await engine.cancel_job(job.id)
    assert (first.changed, first.job.status) == (True, JobStatus.CANCELLED)
    assert (second.changed, second.job.status) == (False, JobStatus.CANCELLED)


async def test_cancel_running_job_becomes_cancelling(engine: OrchestrationEngine) -> None:
    job = (await engine.create_job(url_job())).job
    await engine.update_job_status(job.id, JobStatus.RUNNING)
    assert (await engine.cancel_job(job.id)).job.status is JobStatus.CANCELLING


async def test_cancel_refuses_completed_job(engine: OrchestrationEngine) -> None:
    job = (await engine.create_job(url_job())).job
    await engine.update_job_status(job.id, JobStatus.RUNNING)
    await engine.update_job_status(job.id, JobStatus.COMPLETED, result={"ok": True})
    with pytest.raises(InvalidTransition):
        await engine.cancel_job(job.id)
    assert (await engine.get_job(job.id)).result == {"ok": True}


async def test_retry_requeues_failed_job(engine: OrchestrationEngine) -> None:
    job = (await engine.create_job(url_job(max_attempts=1))).job
    with pytest.raises(InvalidTransition):
        await engine.retry_job(job.id)
    await engine.update_job_status(job.id, JobStatus.RUNNING)
    await engine.update_job_status(job.id, JobStatus.FAILED, error="boom")
    retried = await engine.retry_job(job.id)
    assert retried.status is JobStatus.PENDING and retried.last_error == "boom"


async def test_list_jobs_filters_sorts_and_walks_by_cursor(
    engine: OrchestrationEngine, clock: ManualClock
) -> None:
    for i in range(7):
        clock.advance(1)
        await engine.create_job(url_job(i, priority=Priority.HIGH if i % 2 else Priority.LOW))
    page = await engine.list_jobs(limit=3)
    assert page.total == 7 and [j.source_uri[-1] for j in page.items] == ["6", "5", "4"]
    seen = [j.source_uri[-1] for j in page.items]
    while page.next_cursor:
        page = await engine.list_jobs(limit=3, cursor=page.next_cursor, count=False)
        seen += [j.source_uri[-1] for j in page.items]
    assert seen == ["6", "5", "4", "3", "2", "1", "0"] and page.total is None
    high = await engine.list_jobs(
        filter=JobFilter(priorities=frozenset({Priority.HIGH})), sort=JobSort.OLDEST
    )
    assert [j.source_uri[-1] for j in high.items] == ["1", "3", "5"]
    by_priority = await engine.list_jobs(sort=JobSort.PRIORITY_DESC)
    assert [j.source_uri[-1] for j in by_priority.items] == ["5", "3", "1", "6", "4", "2", "0"]


async def test_list_jobs_refuses_a_cursor_of_another_list(engine: OrchestrationEngine) -> None:
    for i in range(3):
        await engine.create_job(url_job(i))
    cursor = (await engine.list_jobs(limit=1)).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        await engine.list_jobs(limit=1, cursor=cursor, sort=JobSort.OLDEST)
    with pytest.raises(InvalidCursor):
        await engine.list_jobs(cursor=cursor, filter=JobFilter(mime_type="image/*"))
    with pytest.raises(InvalidCursor):
        await engine.list_jobs(cursor="not-a-cursor")
    with pytest.raises(ValidationFailed):
        await engine.list_jobs(limit=201)


def test_an_engine_refuses_a_count_cap_below_one() -> None:
    with pytest.raises(ValueError, match="count_cap"):
        OrchestrationEngine(
            uow=MemoryDatabase(), files=MemoryFileStore(), detectors={},
            clock=ManualClock(), ids=UuidV7Generator(), count_cap=0,
        )  # fmt: skip


async def test_submit_upload_stores_detects_and_creates_jobs(
    engine: OrchestrationEngine, files: MemoryFileStore
) -> None:
    jobs = await engine.submit_upload(
        [
            UploadFile(filename="../a.pdf", content=chunks(b"%PDF-1.4", b" rest")),
            UploadFile(filename="notes.txt", content=chunks(b"hello"), declared_type="image/png"),
        ]
    )
    assert [j.file_name for j in jobs] == ["a.pdf", "notes.txt"]
    assert [j.mime_type for j in jobs] == ["application/pdf", "text/plain"]
    assert jobs[0].source_uri == f"upload://{jobs[0].id}/a.pdf" and jobs[0].file_size == 13
    assert jobs[0].detection is not None and jobs[0].detection.size == 13
    assert (await engine.get_job(jobs[0].id)).detection == jobs[0].detection
    assert files.keys() == sorted([f"{jobs[0].id}/a.pdf", f"{jobs[1].id}/notes.txt"])


async def test_upload_without_detection_keeps_the_declared_type(
    engine: OrchestrationEngine,
) -> None:
    [job] = await engine.submit_upload(
        [UploadFile(filename="x", content=chunks(b"%PDF"), declared_type="Image/PNG; q=1")],
        UploadOptions(detect=False),
    )
    assert job.mime_type == "image/png" and job.detection is None


@pytest.mark.parametrize(
    ("content", "limits", "error"),
    [
        ((b"",), {}, ValidationFailed),
        ((b"12345", b"6"), {"max_file_bytes": 5}, PayloadTooLarge),
        ((b"plain",), {"allowed_types": ("application/pdf",)}, UnsupportedMediaType),
    ],
)
async def test_refused_upload_leaves_no_job_and_no_file(
    clock: ManualClock,
    files: MemoryFileStore,
    content: tuple[bytes, ...],
    limits: dict[str, object],
    error: type[Exception],
) -> None:
    engine = engine_with(clock, files, **limits)
    good = UploadFile(filename="ok.pdf", content=chunks(b"%PDF-1"))
    with pytest.raises(error):
        await engine.submit_upload(
            [good, UploadFile(filename="bad", content=chunks(*content))],
            UploadOptions(detect=False),
        )
    assert files.keys() == [] and (await engine.list_jobs()).total == 0


async def test_upload_refuses_too_many_files_at_once(
    clock: ManualClock, files: MemoryFileStore
) -> None:
    engine = engine_with(clock, files, max_files=2)
    with pytest.raises(ValidationFailed):
        await engine.submit_upload(
            [UploadFile(filename=str(i), content=chunks(b"x")) for i in range(3)]
        )
    assert files.keys() == []
