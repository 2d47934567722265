"""Uploads: files streamed into the store one by one, then made into jobs all at once."""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from chute.application.commands import UploadLimits, UploadOptions, field_problems
from chute.application.errors import (
    FieldError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)
from chute.application.ports import FileStore, FileWriter, StoredFile
from chute.domain import Job
from chute.domain.validation import UNSTORABLE_TEXT, check_metadata, storable

DEFAULT_NAME = "upload.bin"
MAX_NAME_BYTES = 255


def safe_filename(name: str | None) -> str:
    """The client's file name made safe to store: the API's `safe_name` rule."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c) != "Cc").lstrip(".")
    encoded = base.encode("utf-8")[:MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore") or DEFAULT_NAME


@dataclass
class ReceivedFile:
    """One file of an upload as it arrived: where it went and what was wrong with it."""

    job_id: UUID
    name: str
    declared_type: str | None
    writer: FileWriter | None
    size: int = 0
    too_large: bool = False
    stored: StoredFile | None = None


MakeJobs = Callable[[Sequence[ReceivedFile], UploadOptions], Awaitable[list[Job]]]


class UploadBatch:
    """The files of one upload request.

    Feed it with `start_file`, `write`, `end_file` as the bytes arrive, then call
    `submit`. Until `submit` returns, every file it stored is removed on `discard`
    (the engine's `upload()` context does that on any error), so that a refused or
    failed upload leaves nothing on disk.
    """

    def __init__(
        self,
        files: FileStore,
        limits: UploadLimits,
        new_id: Callable[[], UUID],
        make_jobs: MakeJobs,
    ) -> None:
        self._files, self._limits, self._new_id, self._make_jobs = files, limits, new_id, make_jobs
        self._received: list[ReceivedFile] = []
        self._current: ReceivedFile | None = None
        self._submitted = False

    async def start_file(self, filename: str | None, declared_type: str | None = None) -> None:
        """Begin the next file; refuse at once when the upload has too many."""
        index = len(self._received)
        if index >= self._limits.max_files:
            raise ValidationFailed(
                [FieldError(("file",), f"at most {self._limits.max_files} files per upload")]
            )
        if filename is not None and not storable(filename):
            raise ValidationFailed([FieldError(("file", index, "filename"), UNSTORABLE_TEXT)])
        job_id, name = self._new_id(), safe_filename(filename)
        writer = await self._files.create(job_id, name)
        self._current = ReceivedFile(job_id, name, declared_type, writer)
        self._received.append(self._current)

    async def write(self, data: bytes) -> None:
        """Append bytes to the current file; past the size limit they are dropped."""
        current = self._current
        if current is None:
            raise RuntimeError("write() outside a file")
        current.size += len(data)
        if current.too_large or not data:
            return
        if current.size > self._limits.max_file_bytes:
            current.too_large = True
            await self._abort(current)
            return
        assert current.writer is not None
        await current.writer.write(data)

    async def end_file(self) -> None:
        """Put the current file in place."""
        current, self._current = self._current, None
        if current is not None and current.writer is not None:
            current.stored = await current.writer.finish()
            current.writer = None

    async def submit(self, options: UploadOptions) -> list[Job]:
        """Check every file in order, then create one job per file in one transaction."""
        if self._current is not None:
            raise RuntimeError("submit() while a file is open")
        if not self._received:
            raise ValidationFailed([FieldError(("file",), "at least one file is required")])
        if problems := field_problems(lambda: check_metadata(options.metadata)):
            raise ValidationFailed(problems)
        for index, received in enumerate(self._received):
            if received.size == 0:
                raise ValidationFailed([FieldError(("file", index), "the file is empty")])
            if received.too_large:
                raise PayloadTooLarge(
                    f"File {index} ({received.name}) is larger than "
                    f"{self._limits.max_file_bytes} bytes."
                )
        jobs = await self._make_jobs(self._received, options)
        self._submitted = True
        return jobs

    async def discard(self) -> None:
        """Remove every file of this upload, unless it was submitted."""
        if self._submitted:
            return
        for received in self._received:
            await self._abort(received)
            if received.stored is not None:
                await self._files.delete(received.stored.key)
                received.stored = None

    @staticmethod
    async def _abort(received: ReceivedFile) -> None:
        if received.writer is not None:
            writer, received.writer = received.writer, None
            await writer.abort()


def refuse_type(index: int, name: str, mime_type: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"File {index} ({name}) is {mime_type}, which this server does not accept."
    )
