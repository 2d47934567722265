"""Files in an S3-compatible bucket: `{prefix}/{uuid}/{safe_name}`, streamed both ways.

Writes go through obstore's buffered writer: a file smaller than one part is sent in one
PUT when it is finished; a larger one becomes a multipart upload as soon as its first
part is full, with at most `PARTS_IN_FLIGHT` parts in memory at once, so memory stays
flat whatever the size and nothing touches the local disk. An upload that is aborted,
refused or fails is aborted on the server too: no object, no unfinished upload.

A folder is only a key prefix here: it exists while it holds an object, and its age is
its newest object's `last_modified`. A multipart upload in progress holds no object, so
the orphan sweep never sees (nor removes) a folder being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

import httpx
import obstore
from chute.adapters.s3 import S3Failure
from chute.adapters.s3_multipart import MultipartUploads, Upload
from chute.adapters.storage.folders import folder_id
from chute.adapters.storage.local import (
    READ_CHUNK,
    WRITE_BUFFER,
    ContentDigest,
    check_name,
    parse_key,
)
from chute.adapters.storage.ownership import MARKER, marker_content, marker_owner
from chute.application.errors import ContentNotFound, StorageUnavailable
from chute.application.ports import FileStore, FileWriter, StoredFile
from obstore.exceptions import AlreadyExistsError, BaseError

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, Bytes
    from obstore.store import S3Store

MIB = 1024 * 1024
PART_SIZE = 5 * MIB  # S3's smallest part (all but the last must be this large)
PARTS_IN_FLIGHT = 2  # parts being sent at once: memory is about (1 + this) * PART_SIZE
READ_WINDOW = 4 * MIB  # bytes of a file fetched by one ranged GET
LIST_CHUNK = 1000  # keys per list request (S3's most)
_T = TypeVar("_T")

log = logging.getLogger("chute.files")

_MISSING_BUCKET = "The storage bucket does not exist."
_REFUSED = (
    "The storage refused chute's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
    "AWS_SESSION_TOKEN) or what they may do."
)
_UNREACHABLE = "The storage server cannot be reached (AWS_ENDPOINT_URL)."
_FAILED = "The storage server answered with an error."


def _message(failure: S3Failure) -> str:
    if failure.no_bucket:
        return _MISSING_BUCKET
    if failure.kind in ("refused", "no-credentials"):
        return _REFUSED
    if failure.kind == "network":
        return _UNREACHABLE
    return _FAILED


@contextlib.contextmanager
def _translated(key: str | None = None) -> Iterator[None]:
    """obstore's errors as chute's: a missing object (when `key` is read) is
    `ContentNotFound`; anything else, a `StorageUnavailable` saying what went wrong (its
    message never holds a secret: obstore's own may quote URLs and keys, so it is left
    to the log)."""
    try:
        yield
    except (BaseError, FileNotFoundError) as exc:
        failure = S3Failure.of(exc)
        if failure.kind == "missing" and not failure.no_bucket and key is not None:
            raise ContentNotFound(key) from None
        log.debug("files.s3_failed", extra={"failure": failure.kind, "error": str(exc)[:500]})
        raise StorageUnavailable(_message(failure)) from exc


async def _unstoppable(call: Awaitable[_T]) -> _T:
    """`await call`, but a cancellation of the caller leaves the call to finish.

    A writer's calls hold its lock until they end; an abort that follows a cancelled
    write then waits for it, and aborts a multipart upload whose id it knows, rather
    than one that a half-done call left behind unknown."""
    future = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        raise


class _S3Writer(FileWriter):
    """Streams one file to its key; hashes it on the way, in worker threads."""

    def __init__(self, store: S3FileStore, folder: UUID, name: str) -> None:
        self.key = f"{folder}/{name}"
        self._store, self._folder = store, folder
        self._file: AsyncWritableFile = obstore.open_writer_async(
            store.client, self.key, buffer_size=PART_SIZE, max_concurrency=PARTS_IN_FLIGHT
        )
        self._digest = ContentDigest()
        self._buffer = bytearray()
        self._state = "open"

    async def write(self, data: bytes) -> None:
        self._require_open()
        self._buffer += data
        if len(self._buffer) >= WRITE_BUFFER:
            await self._send()

    async def finish(self) -> StoredFile:
        self._require_open()
        try:
            if self._buffer:
                await self._send()
            with _translated():
                await _unstoppable(self._file.close())
        except BaseException:
            await self.abort()
            raise
        self._state = "finished"
        self._store.release(self._folder)
        return self._digest.stored(self.key)

    async def abort(self) -> None:
        if self._state == "aborted":
            return
        self._state, self._buffer = "aborted", bytearray()
        self._store.release(self._folder)
        try:
            # Aborts the multipart upload, if one was begun; a writer already closed (or
            # one whose close failed, which aborts by itself) refuses, and that is fine.
            await self._file.__aexit__(_Abort, _Abort(), None)
        except OSError:
            pass
        except Exception:
            # Called while another error is being raised: that one matters more. What
            # is left is an unfinished upload (see the bucket's lifecycle rules).
            log.warning("files.abort_failed", extra={"key": self.key}, exc_info=True)
        try:
            # A file finished already, or by a close that a cancellation left running.
            await self._store.delete_folder(self._folder)
        except StorageUnavailable:
            log.warning("files.cleanup_failed", extra={"key": self.key})  # the sweep's now

    async def _send(self) -> None:
        chunk, self._buffer = bytes(self._buffer), bytearray()
        try:
            await asyncio.to_thread(self._digest.update, chunk)
            with _translated():
                await _unstoppable(self._file.write(chunk))
        except BaseException:
            await self.abort()
            raise

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the writer of {self.key} is {self._state}")


class _Abort(Exception):
    """Handed to the writer's `__aexit__`: obstore aborts a writer that exits with one."""


class S3FileStore(FileStore):
    """Stores each file at `{prefix}/{uuid}/{safe_name}` of a bucket (obstore's client,
    prefix included: `S3Connection.bucket(name, prefix)`)."""

    def __init__(self, client: S3Store, uploads: MultipartUploads | None = None) -> None:
        self.client = client
        # Unfinished multipart uploads of dead processes, found by `folders` for the
        # sweep's `delete_folder` to abort (without `uploads`, the bucket's lifecycle
        # rule must clean them up).
        self.uploads = uploads
        self._stale: dict[UUID, list[Upload]] = {}
        # Folders with a writer open in this process. On disk, `mkdir` refuses a second
        # file in a folder; here a key is only a name, and ids are new UUIDv7s anyway.
        self._writing: set[UUID] = set()

    async def create(self, folder: UUID, safe_name: str) -> FileWriter:
        name = check_name(safe_name)
        if folder in self._writing:
            raise ValueError(f"the folder {folder} is already in use")
        self._writing.add(folder)
        return _S3Writer(self, folder, name)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async for window in self._windows(key):
            # Served as the other stores serve it: READ_CHUNK bytes at most at a time.
            view = memoryview(window)
            for start in range(0, len(view), READ_CHUNK):
                yield bytes(view[start : start + READ_CHUNK])

    async def describe(self, key: str) -> StoredFile:
        # A multipart upload learns the digest only at its end, too late to keep it on
        # the object: read the file once, each window hashed in a worker thread.
        digest = ContentDigest()
        async for window in self._windows(key):
            await asyncio.to_thread(digest.update, memoryview(window))
        return digest.stored(key)

    async def delete(self, key: str) -> None:
        folder, _ = parse_key(key)
        await self.delete_folder(folder)

    async def delete_folder(self, folder: UUID) -> None:
        with _translated():
            async for batch in obstore.list(self.client, prefix=str(folder), chunk_size=LIST_CHUNK):
                await obstore.delete_async(self.client, [meta["path"] for meta in batch])
        stale = self._stale.pop(folder, [])
        if self.uploads is None:  # nothing was found without it
            return
        for upload in stale:
            try:
                await self.uploads.abort(upload)
            except httpx.HTTPError as e:  # left for the next sweep
                log.warning("files.upload_not_aborted", extra={"error": str(e)[:300]})

    async def folders(self, older_than: datetime) -> AsyncIterator[UUID]:
        """Folders whose newest object is older than `older_than`, then folders holding
        only multipart uploads begun before it (what a process killed mid-upload left)."""
        seen: set[UUID] = set()
        async for folder in self._object_folders(older_than):
            seen.add(folder)
            yield folder
        for folder, uploads in (await self._stale_uploads(older_than)).items():
            self._stale[folder] = uploads
            if folder not in seen:
                yield folder

    async def _object_folders(self, older_than: datetime) -> AsyncIterator[UUID]:
        # Keys come in lexicographic order, so a folder's keys are next to each other:
        # its age is known when the next folder begins, with one folder in memory.
        current: UUID | None = None
        newest = older_than
        with _translated():
            async for batch in obstore.list(self.client, chunk_size=LIST_CHUNK):
                for meta in batch:
                    folder = _folder_of(meta["path"])
                    if folder is None:
                        continue  # the ownership marker, a probe, anything not chute's
                    if folder != current:
                        if current is not None and newest < older_than:
                            yield current
                        current, newest = folder, meta["last_modified"]
                    else:
                        newest = max(newest, meta["last_modified"])
        if current is not None and newest < older_than:
            yield current

    async def _stale_uploads(self, older_than: datetime) -> dict[UUID, list[Upload]]:
        if self.uploads is None or not self.uploads.can_sign:
            return {}
        try:
            found = await self.uploads.older_than(older_than)
        except httpx.HTTPError as e:  # the objects were swept; the uploads wait for next time
            log.warning("files.uploads_not_listed", extra={"error": str(e)[:300]})
            return {}
        stale: dict[UUID, list[Upload]] = {}
        for upload in found:
            folder = _folder_of(upload.key.removeprefix(self.uploads.prefix))
            if folder is not None:
                stale.setdefault(folder, []).append(upload)
        return stale

    async def check_writable(self) -> None:
        probe = f".probe-{secrets.token_hex(8)}"
        with _translated():
            await obstore.put_async(self.client, probe, b"ok")
            await obstore.delete_async(self.client, probe)

    async def claim_ownership(self, deployment_id: UUID) -> UUID:
        owner = await self._owner()
        if owner is not None:
            return owner
        # If-None-Match: * -- of two first claims at once, the second gets 412.
        with _translated(), contextlib.suppress(AlreadyExistsError):
            await obstore.put_async(
                self.client, MARKER, marker_content(deployment_id), mode="create"
            )
        owner = await self._owner()
        if owner is None:
            raise StorageUnavailable(f"The storage's {MARKER} vanished while it was claimed.")
        return owner

    def keys(self) -> list[str]:
        """Keys of every finished file, sorted. Blocking, and it lists the whole prefix:
        for tests and tools, not request paths (as `LocalFileStore.keys()`)."""
        with _translated():
            found = obstore.list(self.client).collect()
        return sorted(meta["path"] for meta in found if _folder_of(meta["path"]) is not None)

    def release(self, folder: UUID) -> None:
        """A writer of `folder` is done with it."""
        self._writing.discard(folder)

    async def _windows(self, key: str) -> AsyncIterator[Bytes]:
        """The bytes of a file, `READ_WINDOW` at a time, each by a ranged GET of its own,
        the next one fetched while the last one is served.

        One GET for the whole file would have to end within the client's timeout, however
        slowly the reader takes it; windows end in time, and memory holds two at most.
        """
        try:
            parse_key(key)
        except ValueError:
            raise ContentNotFound(key) from None
        try:
            with _translated(key):
                size = (await obstore.head_async(self.client, key))["size"]
        except ContentNotFound:
            # A HEAD answer has no body to say NoSuchBucket: a missing bucket looks like
            # a missing object until something else is asked of it.
            with _translated():
                await obstore.list_with_delimiter_async(self.client, prefix=MARKER)
            raise
        ahead: asyncio.Future[Bytes] | None = None
        try:
            for start in range(0, size, READ_WINDOW):
                current = ahead or asyncio.ensure_future(self._range(key, start, size))
                following = start + READ_WINDOW
                ahead = None
                if following < size:
                    ahead = asyncio.ensure_future(self._range(key, following, size))
                yield await current
        finally:
            if ahead is not None:
                ahead.cancel()
                ahead.add_done_callback(lambda done: done.cancelled() or done.exception())

    async def _range(self, key: str, start: int, size: int) -> Bytes:
        end = min(start + READ_WINDOW, size)
        with _translated(key):
            return await obstore.get_range_async(self.client, key, start=start, end=end)

    async def _owner(self) -> UUID | None:
        try:
            with _translated(MARKER):
                result = await obstore.get_async(self.client, MARKER)
                content = await result.bytes_async()
        except ContentNotFound:
            return None
        return marker_owner(content.to_bytes())


def _folder_of(path: str) -> UUID | None:
    """The folder of a stored file's key `{uuid}/{name}`; None for any other key."""
    folder, _, name = path.partition("/")
    return folder_id(folder) if name else None
