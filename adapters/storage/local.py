"""Files on the local disk: one folder per file under a root, put in place atomically.

Also home to the rules every `FileStore` shares (key format, safe names, the sample and
digest taken while writing), which `MemoryFileStore` reuses so the two cannot drift.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import secrets
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, TypeVar
from uuid import UUID

from chute.adapters.storage.folders import old_folders
from chute.adapters.storage.ownership import MARKER, marker_content, marker_owner
from chute.application.errors import ContentNotFound, InsufficientStorage, StorageUnavailable
from chute.application.ports import ContentSample, FileStore, FileWriter, StoredFile
from chute.domain.errors import ChuteError

HEAD_SIZE = 64 * 1024
TAIL_SIZE = 8 * 1024
READ_CHUNK = 64 * 1024
# Small writes are gathered up to this size so that a stream of tiny chunks does not
# cost one thread hop each.
WRITE_BUFFER = 1024 * 1024
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_T = TypeVar("_T")

log = logging.getLogger("chute.files")


def check_name(name: str) -> str:
    """`name` if it is one safe path component; ValueError otherwise."""
    # Names starting with '.' are refused so that they cannot clash with temporary
    # files, and so '.' and '..' are out too.
    if not name or name.startswith(".") or any(c in name for c in "/\\\x00"):
        raise ValueError(f"not a safe file name: {name!r}")
    return name


def parse_key(key: str) -> tuple[UUID, str]:
    """Split a storage key `<uuid>/<name>`; ValueError unless both parts are well formed."""
    folder, _, name = key.partition("/")
    try:
        uuid = UUID(folder)
    except ValueError:
        raise ValueError(f"not a storage key: {key!r}") from None
    # Only the canonical spelling: '{...}' or upper case would name another folder.
    if str(uuid) != folder:
        raise ValueError(f"not a storage key: {key!r}")
    return uuid, check_name(name)


def storage_error(exc: OSError) -> ChuteError:
    """The application error for a failed disk operation (no path: it may reach clients)."""
    if exc.errno in _FULL:
        return InsufficientStorage("The storage folder is full.")
    return StorageUnavailable("The storage folder cannot be written.")


class ContentDigest:
    """The sha256, size, head and tail of a stream, taken in one pass over its bytes."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._head = bytearray()
        self._tail = bytearray()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> ContentDigest:
        view = memoryview(data)
        self._sha.update(view)
        self.size += len(view)
        room = HEAD_SIZE - len(self._head)
        if room > 0:
            self._head += view[:room]
            view = view[room:]
        if len(view):
            # Only bytes past the head count as tail, so head + tail never repeats a
            # byte and is the whole file up to HEAD_SIZE + TAIL_SIZE.
            self._tail += view[-TAIL_SIZE:]
            del self._tail[:-TAIL_SIZE]
        return self

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    def sample(self) -> ContentSample:
        return ContentSample(head=bytes(self._head), tail=bytes(self._tail), size=self.size)

    def stored(self, key: str) -> StoredFile:
        return StoredFile(key=key, size=self.size, sha256=self.sha256, sample=self.sample())


def _digest_file(handle: BinaryIO, key: str) -> StoredFile:
    """Read a whole file once (in a worker thread) into its digest and sample."""
    digest = ContentDigest()
    while chunk := handle.read(WRITE_BUFFER):
        digest.update(chunk)
    return digest.stored(key)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_tree(folder: Path) -> None:
    """Remove a folder and its files; absent is fine, other failures are only logged."""
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError:
        # Called while another error is being raised: that one matters more.
        log.warning("files.cleanup_failed", exc_info=True)


class _LocalWriter(FileWriter):
    """Writes to a hidden temporary file, renamed to its final name by `finish()`."""

    def __init__(self, key: str, final: Path, handle: BinaryIO, root: Path) -> None:
        self.key, self._final, self._handle, self._root = key, final, handle, root
        self._digest = ContentDigest()
        self._buffer = bytearray()
        self._state = "open"
        # Held by every thread that touches the file, so that an abort coming from a
        # cancelled upload waits for a write still running in its thread.
        self._lock = threading.Lock()

    async def write(self, data: bytes) -> None:
        self._require_open()
        self._buffer += data
        if len(self._buffer) >= WRITE_BUFFER:
            chunk, self._buffer = self._buffer, bytearray()
            await self._run(self._write, chunk)

    async def finish(self) -> StoredFile:
        self._require_open()
        chunk, self._buffer = self._buffer, bytearray()
        await self._run(self._commit, chunk)
        self._state = "finished"
        return self._digest.stored(self.key)

    async def abort(self) -> None:
        if self._state != "aborted":
            self._state = "aborted"
            await asyncio.to_thread(self._discard)

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the writer of {self.key} is {self._state}")

    async def _run(self, step: Callable[[bytearray], None], chunk: bytearray) -> None:
        try:
            await asyncio.to_thread(step, chunk)
        except OSError as exc:
            await self.abort()
            raise storage_error(exc) from exc

    def _write(self, chunk: bytearray) -> None:
        with self._lock:
            self._append(chunk)

    def _append(self, chunk: bytearray) -> None:
        # Hashed in the thread that writes, while the chunk is still hot in the cache.
        self._handle.write(chunk)
        self._digest.update(chunk)

    def _commit(self, chunk: bytearray) -> None:
        with self._lock:
            self._append(chunk)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.rename(self._handle.name, self._final)
            # The new name and the new folder are durable only once their parents are.
            _fsync_dir(self._final.parent)
            _fsync_dir(self._root)

    def _discard(self) -> None:
        with self._lock:
            with contextlib.suppress(OSError):
                self._handle.close()
            remove_tree(self._final.parent)


class LocalFileStore(FileStore):
    """Stores each file at `{root}/{uuid}/{safe_name}`; blocking I/O runs in threads."""

    def __init__(self, root: Path | str) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        """The folder that holds every stored file's folder."""
        return self._root

    async def create(self, folder: UUID, safe_name: str) -> FileWriter:
        name = check_name(safe_name)
        return await asyncio.to_thread(self._start, folder, name)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(self._open_for_read, key)
        try:
            while chunk := await self._io(handle.read, READ_CHUNK):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def describe(self, key: str) -> StoredFile:
        handle = await asyncio.to_thread(self._open_for_read, key)
        try:
            return await asyncio.to_thread(_digest_file, handle, key)
        finally:
            await asyncio.to_thread(handle.close)

    async def delete(self, key: str) -> None:
        folder, _ = parse_key(key)
        await self.delete_folder(folder)

    async def delete_folder(self, folder: UUID) -> None:
        await self._io(self._remove_folder, folder)

    async def folders(self, older_than: datetime) -> AsyncIterator[UUID]:
        try:
            async for folder in old_folders(self._root, older_than):
                yield folder
        except OSError as exc:
            raise storage_error(exc) from exc

    async def check_writable(self) -> None:
        try:
            await asyncio.to_thread(self._probe)
        except OSError as exc:
            raise StorageUnavailable("The storage folder cannot be written.") from exc

    async def claim_ownership(self, deployment_id: UUID) -> UUID:
        return await self._io(self._claim, deployment_id)

    def keys(self) -> list[str]:
        """Keys of every finished file, sorted.

        Blocking, and it walks the whole root: for tests and tools, not request paths.
        Synchronous so that it reads the same as `MemoryFileStore.keys()`.
        """
        if not self._root.is_dir():
            return []
        keys = []
        for folder in self._root.iterdir():
            for file in folder.iterdir() if folder.is_dir() else ():
                key = f"{folder.name}/{file.name}"
                with contextlib.suppress(ValueError):
                    parse_key(key)
                    keys.append(key)
        return sorted(keys)

    @staticmethod
    async def _io(call: Callable[..., _T], *args: object) -> _T:
        try:
            return await asyncio.to_thread(call, *args)
        except OSError as exc:
            raise storage_error(exc) from exc

    def _inside(self, path: Path) -> Path:
        """`path` resolved, if it is strictly inside the root (symlinks included)."""
        resolved, root = path.resolve(), self._root.resolve()
        if resolved == root or not resolved.is_relative_to(root):
            raise ValueError("the path leaves the storage folder")
        return resolved

    def _start(self, folder: UUID, name: str) -> _LocalWriter:
        try:
            # Apart from the folder's own mkdir: a file where the root should be raises
            # FileExistsError too, and is a storage failure (503), not a reused folder.
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc) from exc
        try:
            final = self._inside(self._root / str(folder) / name)
            final.parent.mkdir()
        except FileExistsError:
            raise ValueError(f"the folder {folder} is already in use") from None
        except OSError as exc:
            raise storage_error(exc) from exc
        try:
            handle = open(final.parent / f".part-{secrets.token_hex(8)}", "xb")
        except OSError as exc:
            remove_tree(final.parent)
            raise storage_error(exc) from exc
        return _LocalWriter(f"{folder}/{name}", final, handle, self._root.resolve())

    def _open_for_read(self, key: str) -> BinaryIO:
        try:
            folder, name = parse_key(key)
            return open(self._inside(self._root / str(folder) / name), "rb")
        except (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ContentNotFound(key) from None
        except OSError as exc:
            raise storage_error(exc) from exc

    def _remove_folder(self, folder: UUID) -> None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self._inside(self._root / str(folder)))

    def _claim(self, deployment_id: UUID) -> UUID:
        self._root.mkdir(parents=True, exist_ok=True)
        marker = self._root / MARKER
        try:
            return marker_owner(marker.read_bytes())
        except FileNotFoundError:
            pass
        # Written whole under a temporary name, then linked to the marker's name: a link
        # is create-if-absent, so of two first claims at once exactly one lands, and no
        # reader ever sees half a marker.
        temp = self._root / f".claim-{secrets.token_hex(8)}"
        try:
            with open(temp, "xb") as handle:
                handle.write(marker_content(deployment_id))
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another claim came first: it stands
                os.link(temp, marker)
        finally:
            with contextlib.suppress(OSError):
                temp.unlink()
        _fsync_dir(self._root)
        return marker_owner(marker.read_bytes())

    def _probe(self) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        probe = self._root / f".probe-{secrets.token_hex(8)}"
        try:
            with open(probe, "xb") as handle:
                handle.write(b"ok")
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
