"""Bringing content in: the built-in `ingest` processor, the SSRF-safe URL fetcher, and the
address checks it applies."""

from chute.adapters.ingest.fetcher import UrlFetcher
from chute.adapters.ingest.processor import ingest

__all__ = ["UrlFetcher", "ingest"]
