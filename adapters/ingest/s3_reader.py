"""`S3SourceReader`: the `SourceReader` of `s3` jobs, reading `s3://bucket/key` objects.

One streamed GET per object (obstore; the connection is the shared `S3Connection`, from
the standard `AWS_*` settings): the object's size, type and name are known once its
headers are in, so an object over `max_bytes` is refused before any of its body is read,
and the body is counted as it streams, in chunks of about `chunk_bytes`, never whole in
memory.

Every failure is a `JobFailed` whose message a user can act on: a missing object or
bucket, refused access, an unreadable key or an object too large fail the job for good;
a network error or a server error (5xx, 408, 429) is retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import obstore
from chute.adapters.s3 import S3Connection, S3Failure, split_s3_uri
from chute.application.ports import Source, SourceReader
from chute.application.worker import JobFailed
from chute.domain import Job
from obstore.exceptions import BaseError

if TYPE_CHECKING:
    from obstore.store import S3Store

CHUNK_BYTES = 1024 * 1024
_CREDENTIALS = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"


class S3SourceReader(SourceReader):
    """Reads S3 objects through `connection`, refusing those over `max_bytes`."""

    def __init__(
        self, connection: S3Connection, *, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self._connection, self._max_bytes, self._chunk_bytes = connection, max_bytes, chunk_bytes
        self._stores: dict[str, S3Store] = {}  # a client per bucket, its connections reused

    @asynccontextmanager
    async def open(self, job: Job) -> AsyncIterator[Source]:
        uri = job.source_uri
        bucket, key = _split(uri)
        with self._errors(uri):
            result = await obstore.get_async(self._store(bucket, uri), key)
        size = result.meta["size"]
        if size > self._max_bytes:  # refused on its headers, before chute reads its body
            del result  # its connection closes now, not when the traceback goes
            raise JobFailed(
                f"{uri} is larger than {self._max_bytes} bytes (it has {size})", retryable=False
            )
        yield Source(
            uri=uri,
            chunks=self.limited(result.stream(min_chunk_size=self._chunk_bytes), uri),
            file_name=key.rsplit("/", 1)[-1],
            media_type=_media_type(result.attributes.get("Content-Type")),
            size=size,
        )

    async def limited(self, stream: AsyncIterator[bytes], uri: str) -> AsyncIterator[bytes]:
        """The chunks of `stream`, cut with a `JobFailed` once more than `max_bytes` came
        (an object may be longer than its headers said); its errors made `JobFailed`s."""
        received = 0
        while True:
            with self._errors(uri):
                chunk = await anext(stream, None)
            if chunk is None:
                return
            received += len(chunk)
            if received > self._max_bytes:
                raise JobFailed(f"{uri} is larger than {self._max_bytes} bytes", retryable=False)
            yield chunk

    async def aclose(self) -> None:
        """Let go of the clients (a process that used them calls `settle()` at exit)."""
        self._stores.clear()

    def _store(self, bucket: str, uri: str) -> S3Store:
        store = self._stores.get(bucket)
        if store is None:
            try:
                store = self._stores[bucket] = self._connection.bucket(bucket)
            except (BaseError, ValueError) as e:  # settings obstore will not work with
                said = S3Failure.of(e, self._connection.secrets).said
                raise JobFailed(
                    f"cannot read {uri}: the S3 settings are refused ({said}; {_CREDENTIALS})",
                    retryable=False,
                ) from None
        return store

    @contextmanager
    def _errors(self, uri: str) -> Iterator[None]:
        """Turn what obstore raises into `JobFailed`."""
        try:
            yield
        except (BaseError, OSError, ValueError) as e:
            raise self._failed(uri, S3Failure.of(e, self._connection.secrets)) from None

    def _failed(self, uri: str, failure: S3Failure) -> JobFailed:
        if failure.kind == "missing":
            bucket, _ = split_s3_uri(uri)
            where = f": there is no bucket {bucket}" if failure.no_bucket else ""
            return JobFailed(f"{uri} does not exist{where}", retryable=False)
        if failure.kind == "refused":
            return JobFailed(
                f"access to {uri} was refused ({failure.said}; {_CREDENTIALS})", retryable=False
            )
        if failure.kind == "no-credentials":
            return JobFailed(
                f"cannot read {uri}: no S3 credentials are set ({_CREDENTIALS})", retryable=False
            )
        if failure.kind == "bad-key":
            return JobFailed(f"cannot read {uri}: {failure.message}", retryable=False)
        if failure.kind == "http-refused":
            return JobFailed(
                f"cannot read {uri}: AWS_ENDPOINT_URL is an http:// URL, "
                "which is used only with AWS_ALLOW_HTTP=true",
                retryable=False,
            )
        if failure.kind == "status":
            return JobFailed(
                f"reading {uri}, S3 answered {failure.status} ({failure.said})",
                retryable=failure.retryable,
            )
        return JobFailed(
            f"could not reach S3 at {self._connection.endpoint} to read {uri}: {failure.said}",
            retryable=True,
        )


def _split(uri: str) -> tuple[str, str]:
    try:
        bucket, key = split_s3_uri(uri)
    except ValueError as e:
        raise JobFailed(f"cannot read {uri!r}: not an s3://bucket/key URI", retryable=False) from e
    if not key or key.endswith("/"):
        raise JobFailed(f"cannot read {uri}: it names a folder, not an object", retryable=False)
    return bucket, key


def _media_type(value: str | None) -> str | None:
    media = (value or "").split(";", 1)[0].strip().lower()
    return media or None
