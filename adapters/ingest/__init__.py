"""Bringing content in: the built-in `ingest` processor and the `SourceReader`s it reads
`url` and `s3` jobs with (the SSRF-safe URL fetcher, and the address checks it applies)."""

from chute.adapters.ingest.fetcher import UrlFetcher
from chute.adapters.ingest.processor import ingest
from chute.adapters.ingest.url_reader import UrlSourceReader

__all__ = ["UrlFetcher", "UrlSourceReader", "ingest"]
