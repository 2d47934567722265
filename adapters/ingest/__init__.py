"""Bringing content in: the built-in `ingest` processor and the `SourceReader`s it reads
`url` and `s3` jobs with (the SSRF-safe URL fetcher, and the address checks it applies;
S3 objects through the shared S3 connection)."""

from chute.adapters.ingest.fetcher import UrlFetcher
from chute.adapters.ingest.processor import ingest
from chute.adapters.ingest.s3_reader import S3SourceReader
from chute.adapters.ingest.url_reader import UrlSourceReader

__all__ = ["S3SourceReader", "UrlFetcher", "UrlSourceReader", "ingest"]
