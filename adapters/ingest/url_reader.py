"""`UrlSourceReader`: the `SourceReader` of `url` jobs, on the SSRF-safe `UrlFetcher`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from chute.adapters.ingest.fetcher import UrlFetcher
from chute.application.ports import Source, SourceReader
from chute.domain import Job


class UrlSourceReader(SourceReader):
    """Reads http(s) URLs with `fetcher`, whose address rules and errors apply as they are."""

    def __init__(self, fetcher: UrlFetcher) -> None:
        self._fetcher = fetcher

    @asynccontextmanager
    async def open(self, job: Job) -> AsyncIterator[Source]:
        async with self._fetcher.fetch(job.source_uri) as response:
            yield Source(
                uri=response.url,
                chunks=response.chunks,
                file_name=response.filename,
                media_type=response.content_type,
                size=response.size,
            )
