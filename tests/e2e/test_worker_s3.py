"""`chute worker` as a real process reading s3 jobs from the session's SeaweedFS, with the
standard `AWS_*` variables in its environment, on a SQLite file and a storage folder: it
completes them, and SIGTERM ends it with code 0, also while S3 reads are in flight (a
process that used obstore must not abort at exit)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import obstore
import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.application import NewJob, OrchestrationEngine
from chute.domain import JobStatus, Mode, SourceType
from obstore.store import S3Store
from sqlalchemy import text

from tests import corpus
from tests.factories import make_engine, sqlite_url
from tests.faults import WorkerProcess
from tests.s3 import BUCKET, S3Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_path(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "chute.db"
    shutil.copyfile(sqlite_template, path)
    return path


@pytest.fixture
async def database(database_path: Path) -> AsyncIterator[SqlDatabase]:
    db = SqlDatabase(create_engine_for(sqlite_url(database_path)))
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def engine(database: SqlDatabase) -> OrchestrationEngine:
    return make_engine(uow=database)


@pytest.fixture
def env(tmp_path: Path, database_path: Path, s3_server: S3Server) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return (
        os.environ
        | s3_server.env()
        | {
            "CHUTE_DATABASE_URL": sqlite_url(database_path),
            "CHUTE_STORAGE_DIR": str(tmp_path / "storage"),
            "CHUTE_WORKER_POLL_SECONDS": "0.1",
            "CHUTE_LOG_FORMAT": "json",
            "PYTHONPATH": path,
        }
    )


@pytest.fixture
def plain(s3_server: S3Server) -> S3Store:
    config = {
        "endpoint": s3_server.endpoint,
        "access_key_id": s3_server.access_key,
        "secret_access_key": s3_server.secret_key,
        "region": s3_server.region,
    }
    return S3Store(s3_server.bucket, config=config, client_options={"allow_http": True})


async def put_objects(store: S3Store, contents: dict[str, bytes]) -> None:
    slots = asyncio.Semaphore(16)

    async def put(key: str, content: bytes) -> None:
        async with slots:
            await obstore.put_async(store, key, content)

    await asyncio.gather(*(put(key, content) for key, content in contents.items()))


async def status_counts(db: SqlDatabase) -> dict[str, int]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT status, count(*) FROM jobs GROUP BY status"))
        return {status: n for status, n in rows.all()}


async def wait_for(check: Callable[[], Any], what: str, timeout: float = 90) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout}s") from None


async def test_a_worker_process_ingests_an_s3_object_and_exits_0_on_sigterm(
    engine: OrchestrationEngine, env: dict[str, str], plain: S3Store, tmp_path: Path
) -> None:
    pdf, key = corpus.pdf(), f"e2e-{uuid4().hex[:12]}/scans/report.pdf"
    await obstore.put_async(plain, key, pdf)
    uri = f"s3://{BUCKET}/{key}"
    made = (await engine.create_job(NewJob(source_type=SourceType.S3, source_uri=uri))).job
    worker = WorkerProcess(env, tmp_path / "worker.log", "--slots", "2")
    try:

        async def ended() -> bool:
            return (await engine.get_job(made.id)).status.is_terminal

        await wait_for(ended, "the s3 job ended")
        job = await engine.get_job(made.id)
        assert job.status is JobStatus.COMPLETED, job.last_error
        assert (job.file_name, job.file_size, job.mime_type) == (
            "report.pdf",
            len(pdf),
            "application/pdf",
        )
        assert job.detection is not None
        assert job.detection.sha256 == hashlib.sha256(pdf).hexdigest()
        [stored] = (tmp_path / "storage").rglob("report.pdf")
        assert stored.read_bytes() == pdf
        assert worker.stop() == 0, worker.log()
    finally:
        worker.kill()
    assert '"worker.stopped"' in worker.log()
    assert "Fatal Python error" not in worker.log()


async def test_workers_stopped_while_reading_s3_exit_0_and_every_job_completes_once(
    engine: OrchestrationEngine,
    database: SqlDatabase,
    env: dict[str, str],
    plain: S3Store,
    tmp_path: Path,
) -> None:
    prefix = f"e2e-{uuid4().hex[:12]}"
    contents = {f"{prefix}/{i:03}.txt": f"line {i}\n".encode() * 64 for i in range(300)}
    await put_objects(plain, contents)
    specs = [
        NewJob(source_type=SourceType.S3, source_uri=f"s3://{BUCKET}/{key}", mode=Mode.FAST)
        for key in contents
    ]
    ids: list[UUID] = [job.id for job in (await engine.create_jobs(specs)).jobs]

    # Three workers in turn, each stopped by SIGTERM with S3 reads running, then one to
    # finish: each exits 0 and leaves no job running; in the end each job completed once.
    for turn in range(4):
        worker = WorkerProcess(env, tmp_path / f"worker-{turn}.log", "--slots", "4")
        try:
            done_before = (await status_counts(database)).get("completed", 0)

            async def progressed(turn: int = turn, before: int = done_before) -> bool:
                done = (await status_counts(database)).get("completed", 0)
                return done == len(ids) if turn == 3 else done >= before + 20

            await wait_for(progressed, f"worker {turn} completed jobs")
            assert worker.stop() == 0, worker.log()
        finally:
            worker.kill()
        assert "Fatal Python error" not in worker.log()
        assert "running" not in await status_counts(database)

    assert await status_counts(database) == {"completed": len(ids)}
    async with database.engine.connect() as conn:
        per_job = await conn.execute(
            text(
                "SELECT job_id, count(*) FROM job_events WHERE to_status = 'completed' "
                "GROUP BY job_id"
            )
        )
        counts = dict(per_job.all())
    assert len(counts) == len(ids) and set(counts.values()) == {1}
