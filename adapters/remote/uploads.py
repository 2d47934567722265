"""`POST /api/v1/upload` of one file from disk, streamed as a multipart body.

The body is made by a generator that reads the file a chunk at a time while httpx
sends it, so that memory stays flat whatever the file's size. Its length is known
beforehand (the file's size and the parts' headers), so it goes with a
Content-Length, which the server checks against its limit before reading a byte.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from chute.adapters.remote.transport import Transport
from chute.adapters.remote.wire import jobs_of
from chute.application.queries import rfc3339
from chute.domain import Job

CHUNK = 1024 * 1024


def _field_text(value: Any) -> str:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    return str(value)


def _disposition(name: str) -> str:
    """The file part's Content-Disposition: an ASCII `filename` for any reader, and
    the exact name as RFC 5987's `filename*`, which chute reads first."""
    plain = name.encode("ascii", "replace").decode().replace("\\", "_").replace('"', "_")
    exact = quote(name, safe="")
    return f'form-data; name="file"; filename="{plain}"; filename*=UTF-8\'\'{exact}'


class MultipartFile:
    """The multipart body of one file and its text fields, made while it is sent."""

    def __init__(self, path: Path, fields: Mapping[str, Any]) -> None:
        self.path = path
        self.boundary = f"chute-{secrets.token_hex(16)}"
        head = b""
        for name, value in fields.items():
            if value is not None:
                head += self._part_head(f'form-data; name="{name}"')
                head += _field_text(value).encode() + b"\r\n"
        self.head = head + self._part_head(
            _disposition(path.name), "Content-Type: application/octet-stream\r\n"
        )
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.size = os.stat(path).st_size

    def _part_head(self, disposition: str, extra: str = "") -> bytes:
        return f"--{self.boundary}\r\nContent-Disposition: {disposition}\r\n{extra}\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    async def body(self, progress: Callable[[int], None] | None) -> AsyncIterator[bytes]:
        """The body, the file read a chunk at a time (in a thread: the loop goes on);
        `progress` told the file's bytes sent so far after each chunk."""
        yield self.head
        sent = 0
        with self.path.open("rb") as file:
            while chunk := await asyncio.to_thread(_read, file):
                yield chunk
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
        if sent != self.size:  # the file changed while it was sent: the length lied
            raise OSError(f"{self.path} changed size while it was uploaded")
        yield self.tail


def _read(file: BinaryIO) -> bytes:
    return file.read(CHUNK)


async def upload_file(
    http: Transport,
    path: str | os.PathLike[str],
    fields: Mapping[str, Any],
    progress: Callable[[int], None] | None,
) -> Job:
    """The job of the file at `path`, uploaded with the text fields not None."""
    form = MultipartFile(Path(path), fields)
    response = await http.call(
        "POST",
        "/upload",
        content=form.body(progress),
        headers={"Content-Type": form.content_type, "Content-Length": str(form.length)},
        ok=(201,),
    )
    return jobs_of(response.json())[0]
