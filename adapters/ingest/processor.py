"""The built-in processor, `ingest`: brings each job's content in and detects it.

- `url` jobs: the content is downloaded (`UrlFetcher`), stored, and detected by the
  job's mode; the job gets its file name, size and type.
- `upload` jobs: already stored and detected at upload; in `accurate` mode they are
  detected again with the learned detector, which may know better than the upload did.
- `s3` jobs: failed for good, since no S3 processor is configured.

The job's result is a summary of its detection: `{"sha256", "mime_type", "size"}`.
"""

from __future__ import annotations

from typing import Any

from chute.adapters.ingest.fetcher import UrlFetcher
from chute.application import ContentNotFound, PayloadTooLarge
from chute.application.worker import JobContext, JobFailed, Processor
from chute.domain import Job, Mode, SourceType


def ingest(fetcher: UrlFetcher) -> Processor:
    """The `ingest` processor, downloading url jobs with `fetcher`."""

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        if job.source_type is SourceType.URL:
            job = await _download(fetcher, job, context)
        elif job.source_type is SourceType.UPLOAD:
            if job.mode is Mode.ACCURATE:
                job = await _redetect(context)
        else:
            raise JobFailed("s3 sources need an S3 processor; none is configured", retryable=False)
        return summary(job)

    return process


async def _download(fetcher: UrlFetcher, job: Job, context: JobContext) -> Job:
    async with fetcher.fetch(job.source_uri) as response:
        try:
            return await context.store_content(response.filename, response.chunks)
        except PayloadTooLarge as e:  # the engine's limit, when lower than the fetcher's
            raise JobFailed(str(e), retryable=False) from e


async def _redetect(context: JobContext) -> Job:
    try:
        return await context.redetect(Mode.ACCURATE)
    except ContentNotFound as e:
        raise JobFailed("the upload's stored content is missing", retryable=False) from e


def summary(job: Job) -> dict[str, Any]:
    """The result of an ingested job: what its content was found to be."""
    detection = job.detection
    return {
        "sha256": detection.sha256 if detection else None,
        "mime_type": job.mime_type,
        "size": detection.size if detection else job.file_size,
    }
