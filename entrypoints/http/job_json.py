"""The answers of every route that answers jobs: the bytes FastAPI would write from the
routes' response models (which stay declared, for the OpenAPI description), written
by orjson from plain dicts, and sent as they are.

Validating a page of 50 jobs into the models and writing them out was most of the
Python a list spent after its query. orjson writes the same bytes for every value a
job holds (UUIDs, asyncpg's subclass by `_other`, the enums' values, strings, numbers,
UTC times with a fraction of a second): the tests hold it to the models' output. Two
cases go another way: a time that is not UTC or has no fraction is written by
`rfc3339` (as `UtcTime` does), and an answer holding an integer orjson cannot write
(past 64 bits, in metadata or a result) is written by the models themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from chute.domain import DetectionResult, Job
from chute.entrypoints.http.schemas.jobs import JobListResponse, JobResponse, JobsResponse
from chute.entrypoints.http.values import rfc3339
from fastapi import Response


def _time(moment: datetime | None) -> datetime | str | None:
    """A time as orjson writes it when that is `rfc3339`'s text, else that text."""
    if moment is None or (moment.tzinfo is UTC and moment.microsecond):
        return moment
    return rfc3339(moment)


def _detection(found: DetectionResult | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "mime_type": found.mime_type,
        "label": found.label,
        "group": found.group,
        "confidence": found.confidence,
        "detector": found.detector,
        "sha256": found.sha256,
        "size": found.size,
        "detected_at": _time(found.detected_at),
    }


def _job(job: Job) -> dict[str, Any]:
    """The fields of `JobResponse`, in its order."""
    return {
        "id": job.id,
        "status": job.status,
        "source_type": job.source_type,
        "source_uri": job.source_uri,
        "file_name": job.file_name,
        "file_size": job.file_size,
        "mime_type": job.mime_type,
        "priority": job.priority,
        "mode": job.mode,
        "metadata": job.metadata,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "queue": job.queue,
        "schedule": job.schedule,
        "last_error": job.last_error,
        "created_at": _time(job.created_at),
        "updated_at": _time(job.updated_at),
        "detection": _detection(job.detection),
        "worker_id": job.worker_id,
        "lease_expires_at": _time(job.lease_expires_at),
        "run_after": _time(job.run_after),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "progress": job.progress,
        "progress_message": job.progress_message,
        "result": job.result,
    }


def _other(value: Any) -> str:
    """What orjson writes of a value it does not know: a UUID of another class than
    `uuid.UUID` (asyncpg's, for ids read from PostgreSQL) as the string it is."""
    if isinstance(value, UUID):
        return str(value)
    raise TypeError


def _written(content: Any, by_the_models: Callable[[], bytes]) -> bytes:
    try:
        return orjson.dumps(content, default=_other, option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:  # an integer past 64 bits
        return by_the_models()


def job_json(job: Job) -> bytes:
    """The JSON of `JobResponse.of(job)`, byte for byte."""
    return _written(_job(job), lambda: JobResponse.of(job).model_dump_json().encode())


def jobs_json(jobs: list[Job]) -> bytes:
    """The JSON of a `JobsResponse` of `jobs` (the answer of a batch, an upload, a
    claim), byte for byte."""
    return _written(
        {"jobs": [_job(job) for job in jobs]},
        lambda: JobsResponse.of(jobs).model_dump_json().encode(),
    )


_PAGE_FIELDS = tuple(name for name in JobListResponse.model_fields if name != "items")


def job_list_json(jobs: list[Job], **fields: Any) -> bytes:
    """The JSON of a `JobListResponse` of `jobs` and the other `fields`, byte for byte."""
    page = {"items": [_job(job) for job in jobs]} | {name: fields[name] for name in _PAGE_FIELDS}
    return _written(
        page,
        lambda: (
            JobListResponse(items=[JobResponse.of(job) for job in jobs], **fields)
            .model_dump_json()
            .encode()
        ),
    )


def job_response(
    job: Job, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """An answer of one job."""
    return Response(job_json(job), status_code, headers, media_type="application/json")


def jobs_response(jobs: list[Job], status_code: int = 200) -> Response:
    """An answer of several jobs: `{"jobs": [...]}`."""
    return Response(jobs_json(jobs), status_code, media_type="application/json")


def job_list_response(jobs: list[Job], **fields: Any) -> Response:
    """An answer of one page of jobs, with the page's other `fields`."""
    return Response(job_list_json(jobs, **fields), media_type="application/json")
