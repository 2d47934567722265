"""One contract for every FileStore (the local folder, memory, and an S3 bucket on a real
SeaweedFS), then what only the local disk store must also do. What only S3 must do is in
`test_s3_file_store.py`."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import random
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import pytest
from chute.adapters.memory.files import MemoryFileStore
from chute.adapters.s3 import S3Connection
from chute.adapters.storage import S3FileStore, local
from chute.adapters.storage.local import HEAD_SIZE, TAIL_SIZE, LocalFileStore
from chute.adapters.storage.ownership import MARKER
from chute.application.errors import ContentNotFound, InsufficientStorage, ServiceUnavailable
from chute.application.ports import FileStore

from tests.s3 import S3Server

KIB = 1024
BAD_NAMES = ["", ".", "..", "a/b", "a\\b", ".hidden", "x\x00y"]


class Store(FileStore, Protocol):
    """Every store also lists its keys, for tests."""

    def keys(self) -> list[str]: ...


def s3_store(server: S3Server, prefix: str | None = None) -> S3FileStore:
    """A store in the test server's bucket, under a prefix of its own (a new one unless
    `prefix` is given), so that tests see only their own objects."""
    connection = S3Connection.from_env(server.env())
    return S3FileStore(connection.bucket(server.bucket, prefix or f"test-{uuid4()}"))


@pytest.fixture(params=["local", "memory", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalFileStore(tmp_path / "store")
    if request.param == "s3":
        return s3_store(request.getfixturevalue("s3_server"))
    return MemoryFileStore()


def content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


async def put(store: FileStore, data: bytes, chunk: int = 4093, name: str = "a.bin") -> str:
    writer = await store.create(uuid4(), name)
    for start in range(0, len(data), chunk):
        await writer.write(data[start : start + chunk])
    return (await writer.finish()).key


async def read(store: FileStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.open(key)])


# -- the contract --------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, HEAD_SIZE - 1, HEAD_SIZE, HEAD_SIZE + 1, HEAD_SIZE + TAIL_SIZE, 200 * KIB + 7],
)
@pytest.mark.parametrize("chunk", [4093, HEAD_SIZE + 3])
async def test_finished_file_reads_back_with_its_digest_and_sample(
    store: FileStore, size: int, chunk: int
) -> None:
    data = content(size)
    folder = uuid4()
    writer = await store.create(folder, "report.pdf")
    for start in range(0, size, chunk):
        await writer.write(data[start : start + chunk])
    stored = await writer.finish()

    assert writer.key == stored.key == f"{folder}/report.pdf"
    assert stored.size == stored.sample.size == size
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.sample.head == data[:HEAD_SIZE]
    assert stored.sample.tail == data[HEAD_SIZE:][-TAIL_SIZE:]
    assert await read(store, stored.key) == data


async def test_open_yields_chunks_of_at_most_64_kib(store: FileStore) -> None:
    key = await put(store, content(200 * KIB), chunk=100 * KIB)
    sizes = [len(chunk) async for chunk in store.open(key)]
    assert sum(sizes) == 200 * KIB and max(sizes) <= 64 * KIB


async def test_file_is_invisible_until_finished(store: Store) -> None:
    writer = await store.create(uuid4(), "a.txt")
    await writer.write(b"partial")
    assert store.keys() == []
    with pytest.raises(ContentNotFound):
        await read(store, writer.key)
    await writer.abort()


async def test_abort_before_finish_leaves_nothing(store: Store) -> None:
    writer = await store.create(uuid4(), "a.txt")
    await writer.write(content(3 * HEAD_SIZE))
    await writer.abort()
    await writer.abort()  # idempotent: cleanup paths may call it again
    assert store.keys() == []
    with pytest.raises(ContentNotFound):
        await read(store, writer.key)


async def test_abort_after_finish_removes_the_file(store: Store) -> None:
    writer = await store.create(uuid4(), "a.txt")
    await writer.write(b"hello")
    await writer.finish()
    await writer.abort()
    assert store.keys() == []


async def test_writer_refuses_writes_once_closed(store: FileStore) -> None:
    writer = await store.create(uuid4(), "a.txt")
    await writer.finish()
    with pytest.raises(RuntimeError):
        await writer.write(b"late")


async def test_delete_removes_the_file(store: Store) -> None:
    kept = await put(store, b"kept", name="kept.txt")
    gone = await put(store, b"gone")
    await store.delete(gone)
    assert store.keys() == [kept]
    with pytest.raises(ContentNotFound):
        await read(store, gone)


async def test_delete_of_a_missing_key_is_fine(store: FileStore) -> None:
    await store.delete(f"{uuid4()}/missing.txt")


async def test_open_of_a_missing_key_raises_content_not_found(store: FileStore) -> None:
    with pytest.raises(ContentNotFound):
        await read(store, f"{uuid4()}/missing.txt")


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_unsafe_names_are_refused(store: Store, name: str) -> None:
    with pytest.raises(ValueError):
        await store.create(uuid4(), name)
    assert store.keys() == []


async def test_a_folder_holds_one_file(store: FileStore) -> None:
    folder = uuid4()
    await store.create(folder, "a.txt")
    with pytest.raises(ValueError):
        await store.create(folder, "b.txt")


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/etc/passwd", "a/b", "", "{uuid}/../../x", "{uuid}/.part-1"]
)
async def test_malformed_keys_are_refused(store: FileStore, key: str) -> None:
    key = key.format(uuid=uuid4())
    with pytest.raises(ContentNotFound):
        await read(store, key)
    with pytest.raises(ValueError):
        await store.delete(key)


async def test_check_writable_passes_on_a_working_store(store: Store) -> None:
    await store.check_writable()
    assert store.keys() == []  # the probe is gone


async def test_describe_gives_the_digest_and_sample_of_a_stored_file(store: FileStore) -> None:
    data = content(3 * HEAD_SIZE + 5)
    writer = await store.create(uuid4(), "a.bin")
    await writer.write(data)
    stored = await writer.finish()
    assert await store.describe(stored.key) == stored
    with pytest.raises(ContentNotFound):
        await store.describe(f"{uuid4()}/missing.bin")


# -- ownership: one storage, one database ---------------------------------------------


async def test_the_first_claim_marks_the_store_and_later_ones_get_its_owner(
    store: FileStore,
) -> None:
    first, second = uuid4(), uuid4()
    assert await store.claim_ownership(first) == first
    assert await store.claim_ownership(first) == first
    assert await store.claim_ownership(second) == first


async def test_of_concurrent_first_claims_exactly_one_wins(store: FileStore) -> None:
    claims = [uuid4() for _ in range(8)]
    owners = await asyncio.gather(*(store.claim_ownership(claim) for claim in claims))
    assert len(set(owners)) == 1 and owners[0] in claims
    assert await store.claim_ownership(uuid4()) == owners[0]


async def test_the_ownership_marker_is_never_a_folder_or_a_file(store: Store) -> None:
    await store.claim_ownership(uuid4())
    key = await put(store, b"x")
    future = datetime.now(UTC) + timedelta(days=1)
    assert [folder async for folder in store.folders(future)] == [UUID(key.split("/")[0])]
    assert store.keys() == [key]
    with pytest.raises(ContentNotFound):
        await read(store, MARKER)


# -- the local disk store ------------------------------------------------------------


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


async def test_local_file_lives_at_root_uuid_name_and_nothing_else(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"  # created on first use
    folder = uuid4()
    writer = await LocalFileStore(root).create(folder, "report.pdf")
    await writer.write(b"%PDF-1.4")
    await writer.finish()
    assert tree(root) == [str(folder), f"{folder}/report.pdf"]
    assert (root / str(folder) / "report.pdf").read_bytes() == b"%PDF-1.4"


async def test_local_abort_removes_temp_file_and_folder(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    writer = await store.create(uuid4(), "a.txt")
    await writer.write(content(2 * local.WRITE_BUFFER))
    assert len(tree(tmp_path)) == 2  # the folder and its hidden temporary file
    await writer.abort()
    assert tree(tmp_path) == []


async def test_local_delete_removes_the_folder(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path)
    await store.delete(await put(store, b"x"))
    assert tree(tmp_path) == []


async def test_local_store_never_follows_a_link_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = tmp_path / "store"
    root.mkdir()
    folder = uuid4()
    (root / str(folder)).symlink_to(outside)
    store = LocalFileStore(root)
    with pytest.raises(ContentNotFound):
        await read(store, f"{folder}/secret.txt")
    with pytest.raises(ValueError):
        await store.delete(f"{folder}/secret.txt")
    with pytest.raises(ValueError):
        await store.create(folder, "new.txt")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


@pytest.fixture
def unwritable_root(tmp_path: Path) -> Path:
    # Tests run as root, which ignores permission bits: a regular file as parent
    # makes every write under it fail, for any user.
    (tmp_path / "afile").write_text("not a folder")
    return tmp_path / "afile" / "store"


async def test_unwritable_root_fails_readiness(unwritable_root: Path) -> None:
    with pytest.raises(ServiceUnavailable):
        await LocalFileStore(unwritable_root).check_writable()


async def test_unwritable_root_refuses_new_files(unwritable_root: Path) -> None:
    with pytest.raises(ServiceUnavailable):
        await LocalFileStore(unwritable_root).create(uuid4(), "a.txt")
    assert unwritable_root.parent.read_text() == "not a folder"


def os_error(code: int) -> Callable[..., None]:
    def fail(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    return fail


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (errno.ENOSPC, InsufficientStorage),
        (errno.EDQUOT, InsufficientStorage),
        (errno.EIO, ServiceUnavailable),
        (errno.EROFS, ServiceUnavailable),
    ],
)
async def test_local_finish_failure_is_translated_and_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type[Exception]
) -> None:
    store = LocalFileStore(tmp_path)
    writer = await store.create(uuid4(), "a.txt")
    await writer.write(b"data")
    # Full disks and quotas often show only when the data is forced out by fsync.
    monkeypatch.setattr(os, "fsync", os_error(code))
    with pytest.raises(error):
        await writer.finish()
    await writer.abort()
    assert tree(tmp_path) == []


class _FullDisk:
    """A file whose writes fail as on a full disk."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


async def test_local_write_on_a_full_disk_raises_insufficient_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "open", lambda *a: _FullDisk(open(*a)), raising=False)
    writer = await LocalFileStore(tmp_path).create(uuid4(), "a.txt")
    with pytest.raises(InsufficientStorage):
        await writer.write(content(local.WRITE_BUFFER))
    assert tree(tmp_path) == []


async def test_local_write_memory_stays_flat_for_a_large_file(tmp_path: Path) -> None:
    size, chunk = 20 * 1024 * KIB, 64 * KIB
    writer = await LocalFileStore(tmp_path).create(UUID(int=1), "big.bin")
    tracemalloc.start()
    try:
        for n in range(size // chunk):
            await writer.write(bytes([n % 256]) * chunk)
        stored = await writer.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == size
    # tracemalloc counts every thread's allocations; the bound is far below 20 MiB.
    assert peak < 8 * 1024 * KIB
