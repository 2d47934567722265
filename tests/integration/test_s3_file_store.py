"""What the S3 file store must do beyond the contract every store keeps, on a real
SeaweedFS: stream big files in parts, leave no unfinished multipart upload behind
whatever happens to a write, say what is wrong with the bucket or the credentials, and
age folders by their newest object.

Unfinished multipart uploads are listed with S3's ListMultipartUploads, signed by the
test server's helper (`S3Server.unfinished_uploads`): obstore has no call for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import obstore
import pytest
from chute.adapters.s3 import S3Connection
from chute.adapters.s3_multipart import MultipartUploads
from chute.adapters.storage import S3FileStore
from chute.adapters.storage.s3 import PART_SIZE, READ_WINDOW
from chute.application.errors import ContentNotFound, StorageUnavailable

from tests.integration.test_file_store_contract import put, read
from tests.s3 import S3Server

MIB = 1024 * 1024


def data(size: int) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.fixture
def prefix() -> str:
    return f"s3-{uuid4()}"


@pytest.fixture
def store(s3_server: S3Server, prefix: str) -> S3FileStore:
    return S3FileStore(S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket, prefix))


def store_with(server: S3Server, bucket: str | None = None, **env: str) -> S3FileStore:
    connection = S3Connection.from_env(server.env() | env)
    return S3FileStore(connection.bucket(bucket or server.bucket, f"s3-{uuid4()}"))


async def uploads(server: S3Server, prefix: str) -> dict[str, str]:
    return await asyncio.to_thread(server.unfinished_uploads, f"{prefix}/")


async def test_files_are_kept_at_prefix_uuid_name_in_the_bucket(
    store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    folder = uuid4()
    writer = await store.create(folder, "Ünïcødé report.pdf")
    await writer.write(b"%PDF-1.4")
    await writer.finish()
    whole = S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket)
    found = await obstore.list(whole, prefix=prefix).collect_async()
    assert [meta["path"] for meta in found] == [f"{prefix}/{folder}/Ünïcødé report.pdf"]


async def test_a_large_file_goes_up_in_parts_while_it_is_written(
    store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    content = data(2 * READ_WINDOW + 7)  # parts of 5 MiB, and three read windows
    writer = await store.create(uuid4(), "big.bin")
    for start in range(0, len(content), 256 * 1024):
        await writer.write(content[start : start + 256 * 1024])
    # Before finish: a multipart upload holds the parts sent so far; no object yet.
    assert list((await uploads(s3_server, prefix)).values()) == [f"{prefix}/{writer.key}"]
    assert store.keys() == []

    stored = await writer.finish()

    assert await uploads(s3_server, prefix) == {}
    assert stored.size == len(content)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert hashlib.sha256(await read(store, stored.key)).hexdigest() == stored.sha256
    assert await store.describe(stored.key) == stored


async def test_an_aborted_multipart_upload_leaves_no_object_and_no_upload(
    store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    writer = await store.create(uuid4(), "big.bin")
    await writer.write(data(PART_SIZE + MIB))
    assert len(await uploads(s3_server, prefix)) == 1
    await writer.abort()
    assert await uploads(s3_server, prefix) == {}
    assert store.keys() == []


async def test_the_sweep_aborts_the_uploads_a_dead_process_left_unfinished(
    s3_server: S3Server, prefix: str
) -> None:
    connection = S3Connection.from_env(s3_server.env())
    uploads_of = MultipartUploads(connection, s3_server.bucket, prefix)
    store = S3FileStore(connection.bucket(s3_server.bucket, prefix), uploads_of)
    dead, alive = uuid4(), uuid4()
    left = await store.create(dead, "big.bin")  # its process dies: never finished nor aborted
    try:
        await left.write(data(PART_SIZE + MIB))
        finished = await store.create(alive, "small.bin")
        await finished.write(b"kept")
        await finished.finish()
        assert list((await uploads(s3_server, prefix)).values()) == [f"{prefix}/{dead}/big.bin"]

        # Uploads begun before the grace's end are stale; objects are judged as before.
        cutoff = datetime.now(UTC) + timedelta(minutes=1)
        swept = [folder async for folder in store.folders(cutoff)]
        assert sorted(map(str, swept)) == sorted([str(dead), str(alive)])
        await store.delete_folder(dead)

        assert await uploads(s3_server, prefix) == {}
        assert store.keys() == [f"{alive}/small.bin"]
    finally:
        await left.abort()  # nothing to do when the sweep did it


async def test_an_upload_begun_within_the_grace_is_not_swept(
    s3_server: S3Server, prefix: str
) -> None:
    connection = S3Connection.from_env(s3_server.env())
    uploads_of = MultipartUploads(connection, s3_server.bucket, prefix)
    store = S3FileStore(connection.bucket(s3_server.bucket, prefix), uploads_of)
    writer = await store.create(uuid4(), "big.bin")
    await writer.write(data(PART_SIZE + MIB))

    swept = [folder async for folder in store.folders(datetime.now(UTC) - timedelta(minutes=1))]

    assert swept == [] and len(await uploads(s3_server, prefix)) == 1
    await writer.abort()


async def test_a_write_that_fails_midway_aborts_and_leaves_nothing(
    store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    writer = await store.create(uuid4(), "big.bin")
    await writer.write(data(PART_SIZE + MIB))
    # The upload goes away behind the writer's back: its next part is refused.
    for upload_id, key in (await uploads(s3_server, prefix)).items():
        await asyncio.to_thread(s3_server.abort_upload, key, upload_id)
    with pytest.raises(StorageUnavailable):
        for _ in range(3):
            await writer.write(data(PART_SIZE))
        await writer.finish()
    await writer.abort()  # what the caller's cleanup does: nothing more to do
    assert await uploads(s3_server, prefix) == {}
    assert store.keys() == []


async def test_a_cancelled_write_leaves_no_upload_once_aborted(
    store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    writer = await store.create(uuid4(), "big.bin")

    async def endless() -> None:
        while True:
            await writer.write(data(MIB))

    task = asyncio.create_task(endless())
    while not await uploads(s3_server, prefix):  # cancelled once parts are going up
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await writer.abort()
    assert await uploads(s3_server, prefix) == {}
    assert store.keys() == []


async def test_a_missing_key_that_names_a_missing_bucket_is_still_only_missing(
    store: S3FileStore,
) -> None:
    with pytest.raises(ContentNotFound):
        await read(store, f"{uuid4()}/NoSuchBucket <Code>NoSuchBucket</Code>.txt")


# -- what is wrong with the storage, said as such ---------------------------------------


async def every_operation_fails(store: S3FileStore, words: str) -> None:
    """Each operation of `store` raises StorageUnavailable naming `words`."""

    async def write() -> None:
        writer = await store.create(uuid4(), "a.bin")
        await writer.write(data(PART_SIZE + 1))
        await writer.finish()

    operations: dict[str, Callable[[], Awaitable[object]]] = {
        "check_writable": store.check_writable,
        "claim_ownership": lambda: store.claim_ownership(uuid4()),
        "open": lambda: read(store, f"{uuid4()}/a.bin"),
        "folders": lambda: anext(store.folders(datetime.now(UTC)), None),
        "delete": lambda: store.delete(f"{uuid4()}/a.bin"),
        "write": write,
    }
    for name, operation in operations.items():
        with pytest.raises(StorageUnavailable) as refused:
            await operation()
        assert words in str(refused.value), name


async def test_wrong_credentials_are_named_and_the_secret_never_is(
    s3_server: S3Server,
) -> None:
    store = store_with(s3_server, AWS_SECRET_ACCESS_KEY="not-the-secret-0123")
    await every_operation_fails(store, "refused chute's credentials")
    with pytest.raises(StorageUnavailable) as refused:
        await store.check_writable()
    assert "not-the-secret-0123" not in str(refused.value)
    assert s3_server.unfinished_uploads(f"{store.client.prefix}/") == {}


async def test_a_missing_bucket_is_named(s3_server: S3Server) -> None:
    await every_operation_fails(store_with(s3_server, "no-such-bucket"), "bucket does not exist")


async def test_a_server_that_is_away_is_named(s3_server: S3Server) -> None:
    store = store_with(s3_server, AWS_ENDPOINT_URL="http://127.0.0.1:9")  # discard: refused
    with pytest.raises(StorageUnavailable, match="cannot be reached"):
        await store.check_writable()


# -- folders, for the orphan sweep ------------------------------------------------------


async def test_a_folder_is_as_old_as_its_newest_object(
    store: S3FileStore, s3_server: S3Server
) -> None:
    key = await put(store, b"first")
    folder = UUID(key.split("/")[0])
    first = await obstore.head_async(store.client, key)
    # S3 times have a resolution of one second: wait for the server's clock to move on.
    later = first
    while later["last_modified"] <= first["last_modified"]:
        await asyncio.sleep(0.2)
        later_key = f"{folder}/.later"
        await obstore.put_async(store.client, later_key, b"later")
        later = await obstore.head_async(store.client, later_key)

    assert [f async for f in store.folders(later["last_modified"])] == []
    just_after = later["last_modified"] + timedelta(microseconds=1)
    assert [f async for f in store.folders(just_after)] == [folder]
    await store.delete_folder(folder)
    assert [f async for f in store.folders(just_after)] == []
    assert await obstore.list(store.client).collect_async() == []
