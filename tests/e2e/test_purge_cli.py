"""`chute purge` as a user runs it, on a SQLite file with stored uploads."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.system import ManualClock
from chute.application import NewJob, UploadFile, UploadOptions
from chute.domain import JobStatus, SourceType

from tests.factories import make_engine


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def chute(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chute.entrypoints", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_purge_deletes_old_finished_jobs_and_their_files(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'chute.db'}"
    await upgrade(url)
    database, files = SqlDatabase(create_engine_for(url)), LocalFileStore(tmp_path / "files")
    clock = ManualClock(datetime.now(UTC) - timedelta(days=3))
    engine = make_engine(uow=database, files=files, clock=clock)
    try:
        [old_upload] = await engine.submit_upload(
            [UploadFile(filename="a.txt", content=one_chunk(b"old"))], UploadOptions(detect=False)
        )
        await engine.cancel_job(old_upload.id)
        old_pending = (
            await engine.create_job(
                NewJob(source_type=SourceType.URL, source_uri="https://example.org/p")
            )
        ).job
        clock.advance(timedelta(days=3).total_seconds())
        recent = (
            await engine.create_job(
                NewJob(source_type=SourceType.URL, source_uri="https://example.org/r")
            )
        ).job
        await engine.cancel_job(recent.id)
    finally:
        await database.dispose()
    assert files.keys() == [f"{old_upload.id}/a.txt"]

    env = os.environ | {"CHUTE_DATABASE_URL": url, "CHUTE_STORAGE_DIR": str(tmp_path / "files")}
    done = chute("purge", "--older-than", "1d", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "purged 1 jobs"

    database = SqlDatabase(create_engine_for(url))
    engine = make_engine(uow=database, files=files, clock=clock)
    try:
        left = {job.id: job.status for job in (await engine.list_jobs()).items}
    finally:
        await database.dispose()
    assert left == {old_pending.id: JobStatus.PENDING, recent.id: JobStatus.CANCELLED}
    assert files.keys() == [] and not (tmp_path / "files" / str(old_upload.id)).exists()


def test_purge_refuses_unfinished_statuses_and_bad_ages(tmp_path: Path) -> None:
    env = os.environ | {"CHUTE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"}
    for args in (["--older-than", "30d", "--status", "running"], ["--older-than", "soon"]):
        done = chute("purge", *args, env=env)
        assert done.returncode == 2 and "chute purge: error" in done.stderr
