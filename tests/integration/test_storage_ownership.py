"""One storage belongs to one database: the storage's marker names the database's id, the
first database to start on it claims it, and a database never sweeps a storage that
names another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chute.adapters.memory import MemoryDatabase
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.storage.ownership import MARKER
from chute.application import ServiceUnavailable, StorageOwnedElsewhere, UploadFile, UploadOptions
from chute.application.ports import UnitOfWorkFactory

from tests.factories import make_engine


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_storage_without_a_marker_is_claimed_by_the_first_database(
    database: UnitOfWorkFactory, tmp_path: Path
) -> None:
    files = LocalFileStore(tmp_path / "files")
    engine = make_engine(uow=database, files=files)
    deployment_id = await engine.claim_storage()
    assert await engine.claim_storage() == deployment_id  # again: nothing changes
    marker = (tmp_path / "files" / MARKER).read_text()
    assert str(deployment_id) in marker and "claimed_at" in marker


async def test_two_databases_on_one_folder_cannot_sweep_each_others_files(
    tmp_path: Path,
) -> None:
    """Two deployments on one folder: the second is refused, and its sweep, to which
    every file of the first would look orphaned, removes nothing."""
    folder = tmp_path / "pipeline"
    first = make_engine(uow=MemoryDatabase(), files=LocalFileStore(folder))
    second = make_engine(uow=MemoryDatabase(), files=LocalFileStore(folder))
    owner = await first.claim_storage()
    [job] = await first.submit_upload(
        [UploadFile(filename="a.txt", content=one_chunk(b"first's"))], UploadOptions(detect=False)
    )
    old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
    for path in (folder / str(job.id), folder / str(job.id) / "a.txt"):
        os.utime(path, (old, old))

    with pytest.raises(StorageOwnedElsewhere) as refused:
        await second.claim_storage()
    assert refused.value.owner == owner
    with pytest.raises(StorageOwnedElsewhere):
        await second.sweep_orphans(grace=timedelta(0))

    assert (folder / str(job.id) / "a.txt").read_bytes() == b"first's"
    assert await first.sweep_orphans(grace=timedelta(0)) == 0  # its own: referenced


async def test_deleting_the_marker_gives_the_storage_to_the_next_claim(tmp_path: Path) -> None:
    folder = tmp_path / "pipeline"
    first = make_engine(uow=MemoryDatabase(), files=LocalFileStore(folder))
    second = make_engine(uow=MemoryDatabase(), files=LocalFileStore(folder))
    await first.claim_storage()
    (folder / MARKER).unlink()
    owner = await second.claim_storage()
    with pytest.raises(StorageOwnedElsewhere):
        await first.claim_storage()
    assert str(owner) in (folder / MARKER).read_text()


async def test_a_marker_that_is_not_chutes_stops_the_claim(tmp_path: Path) -> None:
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / MARKER).write_text("not json")
    with pytest.raises(ServiceUnavailable, match="repair or delete it"):
        await make_engine(files=LocalFileStore(folder)).claim_storage()
