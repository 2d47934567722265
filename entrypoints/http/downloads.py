"""Serving stored content: the response headers of a download, and its byte stream."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator
from urllib.parse import quote
from uuid import UUID

from chute.application import ContentNotFound, safe_filename
from chute.domain import InvalidValue, Job
from chute.domain.validation import check_mime_type

OCTET_STREAM = "application/octet-stream"
# RFC 8187 attr-char, less what `quote` always keeps (letters, digits, "_.-~").
_ATTR_CHARS = "!#$&+^`|"
# What the quoted `filename=` fallback keeps as is: printable ASCII, less the quote and
# backslash (escapes that many clients read wrongly) and "%" (which some decode).
_UNSAFE_IN_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%]')


def content_disposition(name: str | None) -> str:
    """`attachment` with the file name as RFC 6266 asks: a quoted ASCII fallback, and
    the exact name as `filename*` in percent-encoded UTF-8. Nothing in the name can
    reach the header's syntax: quotes, backslashes, controls and non-ASCII are
    replaced in the fallback and percent-encoded in `filename*`."""
    safe = safe_filename(name)  # no path, no control characters, at most 255 bytes
    fallback = _UNSAFE_IN_FALLBACK.sub("_", safe)
    encoded = quote(safe, safe=_ATTR_CHARS, encoding="utf-8", errors="replace")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def download_headers(job: Job) -> dict[str, str]:
    """The headers of a job's content: its type, length, name, and no sniffing."""
    headers = {
        "Content-Type": _media_type(job.mime_type),
        "Content-Disposition": content_disposition(job.file_name),
        "X-Content-Type-Options": "nosniff",
        # Downloads are attachments; should a browser show one anyway, it runs nothing.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if job.file_size is not None:
        headers["Content-Length"] = str(job.file_size)
    return headers


def _media_type(mime_type: str | None) -> str:
    # Stored types are checked when they are set; this keeps a header safe whatever
    # the database holds.
    if mime_type is None:
        return OCTET_STREAM
    try:
        return check_mime_type(mime_type)
    except InvalidValue:
        return OCTET_STREAM


async def opened(job_id: UUID, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream of `chunks`, with its first chunk read already.

    File stores open content lazily, when it is first read: reading the first chunk
    here makes a missing file a 404 problem before any header is sent, rather than a
    connection dropped halfway through a 200.
    """
    try:
        first = await anext(chunks, b"")
    except ContentNotFound:  # its message names the storage key: answer with the job's
        raise ContentNotFound(job_id) from None
    return _rest(first, chunks)


async def _rest(first: bytes, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
    finally:
        # Also when the client goes away mid-stream: the store closes its file now.
        if isinstance(chunks, AsyncGenerator):
            await chunks.aclose()
