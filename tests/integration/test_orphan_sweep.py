"""The sweep of orphan storage folders, on every file store and every database: a folder
goes only when no job refers to it and nothing touched it for the grace period.

The S3 store's folder times are the server's, which a test cannot set back: there, a
file is made old by moving the test's clock on instead, so the S3 cases are those whose
files are all of one age (`aged_store` runs the others on the local and memory stores).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import obstore
import pytest
from chute.adapters.memory.files import MemoryFileStore
from chute.adapters.storage import S3FileStore
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.storage.ownership import MARKER
from chute.adapters.system import ManualClock
from chute.application import (
    ContentNotFound,
    FileStore,
    OrchestrationEngine,
    ValidationFailed,
)
from chute.application.ports import UnitOfWorkFactory
from chute.application.use_cases import purging
from chute.domain import SourceType

from tests.factories import make_engine, make_job
from tests.integration.test_file_store_contract import s3_store

HOUR = timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    # The real time: the local store ages folders by their mtimes.
    return ManualClock(datetime.now(UTC))


def make_store(kind: str, request: pytest.FixtureRequest, clock: ManualClock) -> FileStore:
    if kind == "local":
        return LocalFileStore(request.getfixturevalue("tmp_path") / "store")
    if kind == "s3":
        return s3_store(request.getfixturevalue("s3_server"))
    return MemoryFileStore(clock)


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, clock: ManualClock) -> FileStore:
    return make_store(request.param, request, clock)


@pytest.fixture(params=["local", "memory"])
def aged_store(request: pytest.FixtureRequest, clock: ManualClock) -> FileStore:
    """A store whose files can be given ages that differ (not S3: see above)."""
    return make_store(request.param, request, clock)


@pytest.fixture
def engine(
    database: UnitOfWorkFactory, store: FileStore, clock: ManualClock
) -> OrchestrationEngine:
    return make_engine(uow=database, files=store, clock=clock)


async def stored(
    store: FileStore, clock: ManualClock, age: timedelta, folder: UUID | None = None
) -> str:
    """The key of a new file whose folder was last touched `age` ago (on S3: at least
    `age` ago, by the clock moved on)."""
    clock.advance(-age.total_seconds())  # the memory store reads the clock
    try:
        writer = await store.create(folder or uuid4(), "page.html")
        await writer.write(b"<html></html>")
        key = (await writer.finish()).key
    finally:
        clock.advance(age.total_seconds())
    if isinstance(store, LocalFileStore):
        set_age(store.root / key.split("/")[0], age)
    if isinstance(store, S3FileStore):
        written = (await obstore.head_async(store.client, key))["last_modified"]
        # One second more: S3 times are whole seconds, rounded down.
        clock.advance(max(0, (written + age - clock.now()).total_seconds() + 1))
    return key


def set_age(folder: Path, age: timedelta, *, inside: bool = True) -> None:
    """Give a folder (and, when `inside`, its entries) an mtime `age` ago."""
    when = (datetime.now(UTC) - age).timestamp()
    for path in [*(folder.iterdir() if inside else ()), folder]:
        os.utime(path, (when, when), follow_symlinks=False)


async def add_jobs(database: UnitOfWorkFactory, *keys: str) -> None:
    async with database() as uow:
        await uow.jobs.add([make_job(content_key=key) for key in keys])
        await uow.commit()


def folders_of(store: FileStore) -> set[str]:
    assert isinstance(store, LocalFileStore | MemoryFileStore | S3FileStore)
    return {key.split("/")[0] for key in store.keys()}


async def test_sweep_removes_old_folders_no_job_refers_to_and_keeps_young_ones(
    database: UnitOfWorkFactory, aged_store: FileStore, clock: ManualClock
) -> None:
    engine = make_engine(uow=database, files=aged_store, clock=clock)
    orphan = await stored(aged_store, clock, 2 * HOUR)
    young = await stored(aged_store, clock, HOUR / 2)
    assert await engine.sweep_orphans() == 1  # a grace of one hour
    assert aged_store.keys() == [young]  # type: ignore[attr-defined]
    with pytest.raises(ContentNotFound):
        await anext(aged_store.open(orphan))
    assert await engine.sweep_orphans(grace=HOUR / 4) == 1
    assert folders_of(aged_store) == set()


async def test_sweep_keeps_folders_of_uploaded_and_of_fetched_content(
    engine: OrchestrationEngine, store: FileStore, clock: ManualClock, database: UnitOfWorkFactory
) -> None:
    upload_id = uuid4()
    upload = await stored(store, clock, 48 * HOUR, folder=upload_id)  # folder = job id
    fetched = await stored(store, clock, 48 * HOUR)  # a folder of its own
    orphan = await stored(store, clock, 48 * HOUR)
    async with database() as uow:
        await uow.jobs.add(
            [
                make_job(id=upload_id, source_type=SourceType.UPLOAD, content_key=upload),
                make_job(content_key=fetched),
            ]
        )
        await uow.commit()

    assert await engine.sweep_orphans() == 1
    assert folders_of(store) == {upload.split("/")[0], fetched.split("/")[0]}
    assert orphan.split("/")[0] not in folders_of(store)


async def test_sweep_looks_folders_up_in_batches(
    engine: OrchestrationEngine,
    store: FileStore,
    clock: ManualClock,
    database: UnitOfWorkFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(purging, "SWEEP_BATCH", 3)
    used = [await stored(store, clock, 2 * HOUR) for _ in range(4)]
    for _ in range(7):
        await stored(store, clock, 2 * HOUR)
    await add_jobs(database, *used)
    assert await engine.sweep_orphans() == 7
    assert store.keys() == sorted(used)  # type: ignore[attr-defined]


async def test_sweep_keeps_an_orphan_younger_than_the_grace(
    engine: OrchestrationEngine, store: FileStore, clock: ManualClock
) -> None:
    young = await stored(store, clock, timedelta(0))
    assert await engine.sweep_orphans() == 0
    assert store.keys() == [young]  # type: ignore[attr-defined]


async def test_sweep_refuses_a_negative_grace(engine: OrchestrationEngine) -> None:
    with pytest.raises(ValidationFailed):
        await engine.sweep_orphans(grace=-HOUR)


# -- the store's side: listing folders by age, removing them -------------------------


async def test_store_lists_the_folders_untouched_since_a_time_and_deletes_them(
    aged_store: FileStore, clock: ManualClock
) -> None:
    old = [await stored(aged_store, clock, 2 * HOUR) for _ in range(3)]
    young = await stored(aged_store, clock, HOUR / 2)
    listed = {str(folder) async for folder in aged_store.folders(clock.now() - HOUR)}
    assert listed == {key.split("/")[0] for key in old}

    for folder in listed:
        await aged_store.delete_folder(UUID(folder))
    await aged_store.delete_folder(UUID(folder))  # absent already: nothing to do
    assert folders_of(aged_store) == {young.split("/")[0]}
    assert [f async for f in aged_store.folders(clock.now() + HOUR)] == [UUID(young.split("/")[0])]


async def test_store_lists_a_folder_being_written_as_young_however_old_the_folder(
    store: FileStore, clock: ManualClock
) -> None:
    folder = uuid4()
    clock.advance(-2 * 3600)
    writer = await store.create(folder, "big.bin")  # begun two hours ago
    clock.advance(2 * 3600)
    await writer.write(b"x" * 1024)  # and still going
    if isinstance(store, LocalFileStore):
        # A folder's own mtime moves only when an entry is added or renamed in it.
        set_age(store.root / str(folder), 2 * HOUR, inside=False)
    assert [f async for f in store.folders(clock.now() - HOUR)] == []
    await writer.abort()


# -- the local disk: only uuid folders are ever listed or removed -------------------


@pytest.fixture
def local_store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "store")


@pytest.fixture
def local(
    local_store: LocalFileStore, clock: ManualClock, database: UnitOfWorkFactory
) -> OrchestrationEngine:
    return make_engine(uow=database, files=local_store, clock=clock)


async def test_local_sweep_leaves_everything_but_old_uuid_folders_alone(
    local: OrchestrationEngine, local_store: LocalFileStore, tmp_path: Path, clock: ManualClock
) -> None:
    root = local_store.root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    orphan = await stored(local_store, clock, 2 * HOUR)
    others = {
        "not-a-uuid": lambda p: p.mkdir(),
        str(uuid4()).upper(): lambda p: p.mkdir(),  # not the canonical spelling
        str(uuid4()): lambda p: p.write_text("a file named like a folder"),
        "notes.txt": lambda p: p.write_text("a file of the operator's"),
        str(uuid4()) + "-link": lambda p: p.symlink_to(outside),
        str(uuid4()): lambda p: p.symlink_to(outside),  # an old uuid link out of root
    }
    for name, make in others.items():
        make(root / name)
        os.utime(root / name, (0, 0), follow_symlinks=False)
    # An orphan folder holding a link out of root: the folder goes, never the target.
    linked = await stored(local_store, clock, 2 * HOUR)
    (root / linked.split("/")[0] / "link").symlink_to(outside)
    set_age(root / linked.split("/")[0], 2 * HOUR)

    assert await local.sweep_orphans() == 2

    # The ownership marker the sweep claimed the folder with is no folder either.
    assert sorted(p.name for p in root.iterdir()) == sorted([*others, MARKER])
    assert not (root / orphan.split("/")[0]).exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_text() == "secret"


async def test_local_sweep_of_a_missing_root_removes_nothing(local: OrchestrationEngine) -> None:
    assert await local.sweep_orphans() == 0
