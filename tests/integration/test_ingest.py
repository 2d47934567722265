"""The built-in `ingest` processor on the in-process Worker: SQLite, real disk, real
detectors, and url jobs fetched from a local HTTP server."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import UUID

import pytest
from chute.adapters.ingest import UrlFetcher, UrlSourceReader, ingest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.storage.local import LocalFileStore
from chute.application import (
    ContentDetector,
    NewJob,
    OrchestrationEngine,
    RetryPolicy,
    UploadFile,
    UploadOptions,
)
from chute.application.worker import Worker
from chute.domain import Job, JobStatus, Mode, SourceType

from tests import corpus
from tests.factories import make_engine, sqlite_url
from tests.fileserver import Running, serve_files


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with serve_files() as running:
        yield running


@pytest.fixture
async def engine(
    tmp_path: Path, sqlite_template: Path, detectors: dict[Mode, ContentDetector]
) -> AsyncIterator[OrchestrationEngine]:
    shutil.copyfile(sqlite_template, tmp_path / "chute.db")
    database = SqlDatabase(create_engine_for(sqlite_url(tmp_path / "chute.db")))
    try:
        yield make_engine(
            uow=database,
            files=LocalFileStore(tmp_path / "storage"),
            detectors=detectors,
            retry=RetryPolicy(base_seconds=60),
        )
    finally:
        await database.dispose()


async def url_job(engine: OrchestrationEngine, uri: str, **fields: object) -> Job:
    new = NewJob(source_type=SourceType.URL, source_uri=uri, **fields)  # type: ignore[arg-type]
    return (await engine.create_job(new)).job


async def upload_job(engine: OrchestrationEngine, mode: Mode) -> Job:
    async def content() -> AsyncIterator[bytes]:
        yield corpus.text()

    options = UploadOptions(mode=mode, detect=mode is not Mode.ACCURATE)
    [job] = await engine.submit_upload(
        [UploadFile(filename="notes.txt", content=content())], options
    )
    return job


async def work_until_settled(
    engine: OrchestrationEngine, ids: list[UUID], *, allow_private: bool = True
) -> list[Job]:
    """Run an ingest worker until every job in `ids` has ended; return them."""
    fetcher = UrlFetcher(
        timeout_seconds=5, max_redirects=3, max_bytes=1 << 20, allow_private=allow_private
    )
    readers = {SourceType.URL: UrlSourceReader(fetcher)}
    worker = Worker(engine, ingest(readers), worker_id="w1", poll_seconds=0.02, grace_seconds=1)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(20):
            while True:
                jobs = [await engine.get_job(job_id) for job_id in ids]
                if all(job.status.is_terminal for job in jobs):
                    return jobs
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task


async def test_a_url_job_is_downloaded_stored_and_detected(
    engine: OrchestrationEngine, server: Running, tmp_path: Path
) -> None:
    made = await url_job(engine, server.url("/files/report.pdf"))
    [job] = await work_until_settled(engine, [made.id])
    pdf = corpus.pdf()
    assert job.status is JobStatus.COMPLETED, job.last_error
    assert (job.file_name, job.file_size, job.mime_type) == (
        "report.pdf",
        len(pdf),
        "application/pdf",
    )
    assert job.detection is not None and job.detection.sha256 == hashlib.sha256(pdf).hexdigest()
    assert job.result == {
        "sha256": job.detection.sha256,
        "mime_type": "application/pdf",
        "size": len(pdf),
    }
    [stored] = (tmp_path / "storage").rglob("report.pdf")
    assert stored.read_bytes() == pdf


async def test_a_url_job_that_is_not_found_fails_for_good(
    engine: OrchestrationEngine, server: Running
) -> None:
    made = await url_job(engine, server.url("/missing"))
    [job] = await work_until_settled(engine, [made.id])
    assert job.status is JobStatus.FAILED and job.attempts == 1
    assert job.last_error is not None and "404" in job.last_error
    assert job.content_key is None


async def test_a_url_job_on_a_private_address_fails_by_default(
    engine: OrchestrationEngine, server: Running
) -> None:
    made = await url_job(engine, server.url("/files/report.pdf"))
    [job] = await work_until_settled(engine, [made.id], allow_private=False)
    assert job.status is JobStatus.FAILED
    assert job.last_error is not None and "is not public" in job.last_error


async def test_an_accurate_upload_is_detected_again_by_the_learned_detector(
    engine: OrchestrationEngine,
) -> None:
    made = await upload_job(engine, Mode.ACCURATE)
    assert made.detection is None  # uploaded without detection
    [job] = await work_until_settled(engine, [made.id])
    assert job.status is JobStatus.COMPLETED, job.last_error
    assert job.detection is not None and job.detection.detector == "magika"
    assert job.result is not None and job.result["mime_type"] == job.mime_type == "text/plain"


async def test_other_uploads_complete_with_their_detection(engine: OrchestrationEngine) -> None:
    made = await upload_job(engine, Mode.FAST)
    [job] = await work_until_settled(engine, [made.id])
    assert job.status is JobStatus.COMPLETED
    assert job.detection == made.detection
    assert job.result is not None and job.result["sha256"] == made.detection.sha256  # type: ignore[union-attr]


async def test_a_source_type_without_a_reader_fails_for_good(engine: OrchestrationEngine) -> None:
    new = NewJob(source_type=SourceType.S3, source_uri="s3://reports/2026/q1.pdf")
    made = (await engine.create_job(new)).job
    [job] = await work_until_settled(engine, [made.id])  # a worker that reads url jobs only
    assert job.status is JobStatus.FAILED and job.attempts == 1
    assert job.last_error == "s3 sources cannot be read: this worker has no reader for them"
