"""Two chute checkouts, each with its own database, pointed at one storage folder: the
second cannot start (`chute serve`, `chute worker`, `chute purge` all refuse, naming
the settings to change), so it never sweeps the first one's files as orphans."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.storage.ownership import MARKER
from chute.application import UploadFile, UploadOptions

from tests.factories import make_engine, sqlite_url
from tests.faults import chute

pytestmark = pytest.mark.slow


def env_of(database: Path, storage: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHUTE_")}
    return clean | {
        "CHUTE_DATABASE_URL": sqlite_url(database),
        "CHUTE_STORAGE_URL": f"file://{storage}",
        "CHUTE_LOG_FORMAT": "json",
    }


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chute(*args), env=env, capture_output=True, text=True, timeout=120)


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_second_database_on_one_folder_cannot_start_nor_delete_the_firsts_files(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "pipeline"
    first, second = env_of(tmp_path / "a.db", storage), env_of(tmp_path / "b.db", storage)
    for env in (first, second):
        await upgrade(env["CHUTE_DATABASE_URL"])

    claimed = run("purge", "--older-than", "1d", env=first)  # the first start claims
    assert claimed.returncode == 0, claimed.stderr
    database = SqlDatabase(create_engine_for(first["CHUTE_DATABASE_URL"]))
    try:
        engine = make_engine(uow=database, files=LocalFileStore(storage))
        [job] = await engine.submit_upload(
            [UploadFile(filename="a.txt", content=one_chunk(b"first's"))],
            UploadOptions(detect=False),
        )
    finally:
        await database.dispose()
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for path in (storage / str(job.id), storage / str(job.id) / "a.txt"):
        os.utime(path, (old, old))  # what the second one's sweep would take for an orphan

    commands = {
        "serve": ["serve", "--port", "1"],
        "worker": ["worker"],
        "purge": ["purge", "--older-than", "1s"],
    }
    for command, args in commands.items():
        done = run(*args, env=second)
        assert done.returncode == 2, (command, done.stderr)
        [line] = [line for line in done.stderr.splitlines() if line.startswith("chute ")]
        assert line.startswith(f"chute {command}: the storage at CHUTE_STORAGE_URL (file://")
        assert "belongs to another database" in line and "CHUTE_DATABASE_URL" in line
        assert "Traceback" not in done.stderr

    assert (storage / str(job.id) / "a.txt").read_bytes() == b"first's"

    # On purpose: without the marker, the storage goes to the next database that starts.
    (storage / MARKER).unlink()
    moved = run("purge", "--older-than", "1d", env=second)
    assert moved.returncode == 0, moved.stderr
    assert run("purge", "--older-than", "1d", env=first).returncode == 2
