"""Files kept in memory: the `FileStore` for tests, demos and single-process runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

from chute.adapters.storage.local import READ_CHUNK, ContentDigest, check_name, parse_key
from chute.adapters.system import SystemClock
from chute.application.errors import ContentNotFound
from chute.application.ports import Clock, FileStore, FileWriter, StoredFile


class _MemoryWriter(FileWriter):
    """Collects the chunks of one file; the store sees it only after `finish()`."""

    def __init__(self, store: MemoryFileStore, folder: UUID, name: str) -> None:
        self.key = f"{folder}/{name}"
        self._store, self._folder = store, folder
        self._parts: list[bytes] = []
        self._digest = ContentDigest()
        self._state = "open"

    async def write(self, data: bytes) -> None:
        self._require_open()
        self._parts.append(bytes(data))
        self._digest.update(data)
        self._store._touch(self._folder)

    async def finish(self) -> StoredFile:
        self._require_open()
        self._state = "finished"
        self._store._put(self.key, b"".join(self._parts))
        self._parts = []
        return self._digest.stored(self.key)

    async def abort(self) -> None:
        if self._state != "aborted":
            self._state, self._parts = "aborted", []
            self._store._remove(self._folder)

    def _require_open(self) -> None:
        if self._state != "open":
            raise RuntimeError(f"the writer of {self.key} is {self._state}")


class MemoryFileStore(FileStore):
    """Keeps each file's bytes in a dict under the same keys and rules as the local store.

    A folder is in use from `create` until the file is aborted or deleted, as on disk;
    it is as old as its last write by `clock` (the system's by default), as a folder on
    disk is by its mtimes.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._files: dict[str, bytes] = {}
        self._folders: dict[UUID, datetime] = {}
        self.owner: UUID | None = None  # the database the store belongs to, once claimed

    async def create(self, folder: UUID, safe_name: str) -> FileWriter:
        name = check_name(safe_name)
        if folder in self._folders:
            raise ValueError(f"the folder {folder} is already in use")
        self._touch(folder)
        return _MemoryWriter(self, folder, name)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            parse_key(key)
            content = self._files[key]
        except (ValueError, KeyError):
            raise ContentNotFound(key) from None
        for start in range(0, len(content), READ_CHUNK):
            yield content[start : start + READ_CHUNK]

    async def describe(self, key: str) -> StoredFile:
        digest = ContentDigest()
        async for chunk in self.open(key):
            digest.update(chunk)
        return digest.stored(key)

    async def delete(self, key: str) -> None:
        folder, _ = parse_key(key)
        self._remove(folder)

    async def delete_folder(self, folder: UUID) -> None:
        self._remove(folder)

    async def folders(self, older_than: datetime) -> AsyncIterator[UUID]:
        for folder, changed in list(self._folders.items()):
            if changed < older_than:
                yield folder

    async def check_writable(self) -> None:
        return None

    async def claim_ownership(self, deployment_id: UUID) -> UUID:
        if self.owner is None:
            self.owner = deployment_id
        return self.owner

    def keys(self) -> list[str]:
        """Keys of every finished file, sorted."""
        return sorted(self._files)

    def _put(self, key: str, content: bytes) -> None:
        self._files[key] = content
        self._touch(parse_key(key)[0])

    def _touch(self, folder: UUID) -> None:
        self._folders[folder] = self._clock.now()

    def _remove(self, folder: UUID) -> None:
        self._folders.pop(folder, None)
        prefix = f"{folder}/"
        for key in [k for k in self._files if k.startswith(prefix)]:
            del self._files[key]
