"""The built-in processor, `ingest`: brings each job's content in and detects it.

- `url` and `s3` jobs: the source is read by the `SourceReader` of its type (the
  SSRF-safe http(s) fetcher; S3 through the `AWS_*` settings), streamed into the file
  store and detected by the job's mode; the job gets its file name, size and type.
- `upload` jobs: already stored and detected at upload; in `accurate` mode they are
  detected again with the learned detector, which may know better than the upload did.

The job's result is a summary of its detection: `{"sha256", "mime_type", "size"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chute.application import ContentNotFound, PayloadTooLarge
from chute.application.ports import SourceReader
from chute.application.worker import JobContext, JobFailed, Processor
from chute.domain import Job, Mode, SourceType


def ingest(readers: Mapping[SourceType, SourceReader]) -> Processor:
    """The `ingest` processor, reading `url` and `s3` sources with `readers`, by type."""

    async def process(job: Job, context: JobContext) -> dict[str, Any]:
        if job.source_type is SourceType.UPLOAD:
            if job.mode is Mode.ACCURATE:
                job = await _redetect(context)
            return summary(job)
        reader = readers.get(job.source_type)
        if reader is None:
            raise JobFailed(
                f"{job.source_type} sources cannot be read: this worker has no reader for them",
                retryable=False,
            )
        return summary(await _read_and_store(reader, job, context))

    return process


async def _read_and_store(reader: SourceReader, job: Job, context: JobContext) -> Job:
    async with reader.open(job) as source:
        try:
            return await context.store_content(source.file_name, source.chunks)
        except PayloadTooLarge as e:  # the engine's limit, when lower than the reader's
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
