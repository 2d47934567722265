"""The built-in `ingest` processor on s3 jobs, against a real S3-compatible server (the
session's SeaweedFS, authentication on): the in-process Worker on the in-memory
adapters, real detectors, objects put by a plain obstore client."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import obstore
import pytest
from chute.adapters.ingest import S3SourceReader, ingest
from chute.adapters.memory import MemoryFileStore
from chute.adapters.s3 import S3Connection
from chute.application import (
    ContentDetector,
    NewJob,
    OrchestrationEngine,
    RetryPolicy,
    UploadLimits,
)
from chute.application.worker import JobFailed, Worker
from chute.domain import Job, JobStatus, Mode, SourceType
from obstore.store import S3Store

from tests import corpus
from tests.factories import make_engine, make_job
from tests.s3 import BUCKET, S3Server, seaweedfs_server

LIMIT = 1024 * 1024  # CHUTE_MAX_UPLOAD_BYTES of these tests
CREDENTIALS_HINT = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"


@pytest.fixture
def files() -> MemoryFileStore:
    return MemoryFileStore()


@pytest.fixture
def engine(files: MemoryFileStore, detectors: dict[Mode, ContentDetector]) -> OrchestrationEngine:
    return make_engine(
        files=files,
        detectors=detectors,
        limits=UploadLimits(max_file_bytes=LIMIT),
        retry=RetryPolicy(base_seconds=60),  # a retried job is not claimed again here
    )


@pytest.fixture
def plain(s3_server: S3Server) -> S3Store:
    """A plain obstore client of the test bucket, as any other program would have."""
    return plain_client(s3_server)


def plain_client(server: S3Server) -> S3Store:
    config = {
        "endpoint": server.endpoint,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "region": server.region,
    }
    return S3Store(server.bucket, config=config, client_options={"allow_http": True})


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"ingest-{uuid4().hex[:12]}"


async def reader_for(env: dict[str, str]) -> AsyncIterator[S3SourceReader]:
    reader = S3SourceReader(S3Connection.from_env(env), max_bytes=LIMIT)
    try:
        yield reader
    finally:
        await reader.aclose()


@pytest.fixture
async def reader(s3_server: S3Server) -> AsyncIterator[S3SourceReader]:
    async for made in reader_for(s3_server.env()):
        yield made


async def s3_jobs(engine: OrchestrationEngine, uris: list[str], **fields: object) -> list[UUID]:
    ids: list[UUID] = []
    for start in range(0, len(uris), 500):
        specs = [
            NewJob(source_type=SourceType.S3, source_uri=uri, **fields)  # type: ignore[arg-type]
            for uri in uris[start : start + 500]
        ]
        ids += [job.id for job in (await engine.create_jobs(specs)).jobs]
    return ids


def attempted(job: Job) -> bool:
    """Ended, or back in the queue after a failed attempt (to be retried later)."""
    return job.status.is_terminal or (job.status is JobStatus.PENDING and job.attempts > 0)


async def ingest_all(
    engine: OrchestrationEngine, reader: S3SourceReader, ids: list[UUID], *, slots: int = 1
) -> list[Job]:
    """Run an ingest worker until every job in `ids` was attempted; return them."""
    processor = ingest({SourceType.S3: reader})
    worker = Worker(engine, processor, slots=slots, worker_id="w1", poll_seconds=0.02)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(120):
            while True:
                jobs = [await engine.get_job(job_id) for job_id in ids]
                if all(attempted(job) for job in jobs):
                    return jobs
                await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await task


async def ingest_one(engine: OrchestrationEngine, reader: S3SourceReader, uri: str) -> Job:
    [job] = await ingest_all(engine, reader, await s3_jobs(engine, [uri]))
    return job


async def stored_folders(files: MemoryFileStore) -> list[UUID]:
    return [folder async for folder in files.folders(datetime.now(UTC) + timedelta(days=1))]


async def test_an_s3_object_becomes_a_completed_job_with_its_detected_type(
    engine: OrchestrationEngine, reader: S3SourceReader, plain: S3Store, prefix: str
) -> None:
    pdf = corpus.pdf()
    await obstore.put_async(plain, f"{prefix}/reports/2026/q1.pdf", pdf)
    uri = f"s3://{BUCKET}/{prefix}/reports/2026/q1.pdf"
    job = await ingest_one(engine, reader, uri)
    assert job.status is JobStatus.COMPLETED, job.last_error
    assert (job.file_name, job.file_size, job.mime_type) == ("q1.pdf", len(pdf), "application/pdf")
    sha256 = hashlib.sha256(pdf).hexdigest()
    assert job.detection is not None
    assert (job.detection.sha256, job.detection.size) == (sha256, len(pdf))
    assert job.result == {"sha256": sha256, "mime_type": "application/pdf", "size": len(pdf)}
    _, content = await engine.open_content(job.id)
    assert b"".join([chunk async for chunk in content]) == pdf


async def test_a_missing_key_fails_the_job_for_good(
    engine: OrchestrationEngine, reader: S3SourceReader, plain: S3Store, prefix: str
) -> None:
    uri = f"s3://{BUCKET}/{prefix}/nothing-here.pdf"
    job = await ingest_one(engine, reader, uri)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert job.last_error == f"{uri} does not exist"


async def test_a_missing_bucket_fails_the_job_for_good(
    engine: OrchestrationEngine, reader: S3SourceReader
) -> None:
    job = await ingest_one(engine, reader, "s3://no-such-bucket/a.pdf")
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert (
        job.last_error
        == "s3://no-such-bucket/a.pdf does not exist: there is no bucket no-such-bucket"
    )


@pytest.mark.parametrize(
    ("variable", "value", "s3_code"),
    [
        ("AWS_SECRET_ACCESS_KEY", "a-wrong-secret-key", "SignatureDoesNotMatch"),
        ("AWS_ACCESS_KEY_ID", "nobody-by-this-name", "InvalidAccessKeyId"),
    ],
)
async def test_wrong_credentials_fail_the_job_for_good_saying_so(
    engine: OrchestrationEngine,
    s3_server: S3Server,
    plain: S3Store,
    prefix: str,
    variable: str,
    value: str,
    s3_code: str,
) -> None:
    await obstore.put_async(plain, f"{prefix}/a.txt", corpus.text())
    uri = f"s3://{BUCKET}/{prefix}/a.txt"
    async for wrong in reader_for(s3_server.env() | {variable: value}):
        job = await ingest_one(engine, wrong, uri)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    error = job.last_error or ""
    assert error.startswith(f"access to {uri} was refused ({s3_code}: ")
    assert error.endswith(CREDENTIALS_HINT)
    assert "a-wrong-secret-key" not in error and s3_server.secret_key not in error
    assert "\n" not in error and "Debug" not in error and len(error) < 400


async def test_a_stopped_server_fails_the_attempt_to_be_retried(
    engine: OrchestrationEngine, prefix: str
) -> None:
    with seaweedfs_server() as other:  # a server of this test's own, then stopped
        await obstore.put_async(plain_client(other), f"{prefix}/a.pdf", corpus.pdf())
    uri = f"s3://{BUCKET}/{prefix}/a.pdf"
    async for reader in reader_for(other.env()):
        job = await ingest_one(engine, reader, uri)
    assert (job.status, job.attempts) == (JobStatus.PENDING, 1)
    assert job.run_after is not None  # after the backoff
    assert job.last_error == (
        f"could not reach S3 at {other.endpoint} to read {uri}: Connection refused"
    )


async def test_an_object_over_the_limit_fails_for_good_and_nothing_is_stored(
    engine: OrchestrationEngine,
    reader: S3SourceReader,
    files: MemoryFileStore,
    plain: S3Store,
    prefix: str,
) -> None:
    await obstore.put_async(plain, f"{prefix}/big.bin", bytes(3 * LIMIT))
    uri = f"s3://{BUCKET}/{prefix}/big.bin"
    job = await ingest_one(engine, reader, uri)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)
    assert job.last_error == f"{uri} is larger than {LIMIT} bytes (it has {3 * LIMIT})"
    assert await stored_folders(files) == []


async def test_an_object_over_the_limit_is_refused_before_its_body_is_read(
    reader: S3SourceReader, plain: S3Store, prefix: str
) -> None:
    await obstore.put_async(plain, f"{prefix}/big.bin", bytes(3 * LIMIT))
    job = make_s3_job(f"s3://{BUCKET}/{prefix}/big.bin")
    with pytest.raises(JobFailed, match="is larger than") as refused:
        async with reader.open(job):
            pytest.fail("the object was opened for reading")
    assert refused.value.retryable is False


async def test_an_object_within_the_limit_streams_in_chunks(
    s3_server: S3Server, plain: S3Store, prefix: str
) -> None:
    content = bytes(range(256)) * (LIMIT // 256)  # exactly the limit: allowed
    await obstore.put_async(plain, f"{prefix}/deep/at-the-limit.bin", content)
    job = make_s3_job(f"s3://{BUCKET}/{prefix}/deep/at-the-limit.bin")
    connection = S3Connection.from_env(s3_server.env())
    reader = S3SourceReader(connection, max_bytes=LIMIT, chunk_bytes=64 * 1024)
    async with reader.open(job) as source:
        chunks = [chunk async for chunk in source.chunks]
    await reader.aclose()
    assert (source.file_name, source.size) == ("at-the-limit.bin", LIMIT)
    assert b"".join(chunks) == content and len(chunks) > 1
    assert max(len(chunk) for chunk in chunks) < LIMIT


def make_s3_job(uri: str) -> Job:
    return make_job(source_type=SourceType.S3, source_uri=uri, file_name=None, file_size=None)


async def test_a_thousand_objects_complete_exactly_once(
    engine: OrchestrationEngine, reader: S3SourceReader, plain: S3Store, prefix: str
) -> None:
    contents = {f"{prefix}/many/{i:04}.txt": f"object {i}\n".encode() * 8 for i in range(1000)}
    puts = asyncio.Semaphore(16)

    async def put(key: str, content: bytes) -> None:
        async with puts:
            await obstore.put_async(plain, key, content)

    await asyncio.gather(*(put(key, content) for key, content in contents.items()))
    uris = [f"s3://{BUCKET}/{key}" for key in contents]
    ids = await s3_jobs(engine, uris, mode=Mode.FAST)
    jobs = await ingest_all(engine, reader, ids, slots=8)

    assert [job.status for job in jobs] == [JobStatus.COMPLETED] * 1000
    assert {job.attempts for job in jobs} == {1}
    for job, content in zip(jobs, contents.values(), strict=True):
        assert job.detection is not None
        assert job.detection.sha256 == hashlib.sha256(content).hexdigest()
    completions = [
        [e for e in await engine.list_job_events(job.id) if e.to_status is JobStatus.COMPLETED]
        for job in jobs
    ]
    assert [len(found) for found in completions] == [1] * 1000
