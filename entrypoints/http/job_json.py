"""The answers of every route that answers jobs: the bytes FastAPI would write from the
routes' response models (which stay declared, for the OpenAPI description), written
faster, and sent as they are.

`UtcTime` writes every time through `rfc3339`, a Python call per value: those calls are
about a third of writing a page of 50 jobs. Pydantic's own datetime output is the same
text for a UTC time with a non-zero fraction of a second (it leaves a zero fraction out,
and writes other offsets as they are), so jobs whose times are all such (what the
databases give back: UTC, with microseconds) are written through twins of the models
with plain datetimes; any others through the models themselves.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chute.domain import Job
from chute.entrypoints.http.schemas.jobs import (
    DetectionResponse,
    JobListResponse,
    JobResponse,
    JobsResponse,
)
from fastapi import Response


class _DetectionNativeTimes(DetectionResponse):
    detected_at: datetime


class _JobNativeTimes(JobResponse):
    created_at: datetime
    updated_at: datetime
    detection: _DetectionNativeTimes | None
    lease_expires_at: datetime | None
    run_after: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class _JobsNativeTimes(JobsResponse):
    jobs: list[_JobNativeTimes]  # type: ignore[assignment]  # narrower: only such items


class _ListNativeTimes(JobListResponse):
    items: list[_JobNativeTimes]  # type: ignore[assignment]  # narrower: only such items


JOB_TIMES = (
    "created_at",
    "updated_at",
    "lease_expires_at",
    "run_after",
    "started_at",
    "finished_at",
)


def _native_times_fit(jobs: list[Job]) -> bool:
    """Whether pydantic writes every time of `jobs` as `rfc3339` does."""
    for job in jobs:
        times = [getattr(job, name) for name in JOB_TIMES]
        if job.detection is not None:
            times.append(job.detection.detected_at)
        for moment in times:
            if moment is not None and (moment.tzinfo is not UTC or not moment.microsecond):
                return False
    return True


_MODELS = (JobResponse, JobsResponse, JobListResponse)
_NATIVE = (_JobNativeTimes, _JobsNativeTimes, _ListNativeTimes)


def _models(
    jobs: list[Job],
) -> tuple[type[JobResponse], type[JobsResponse], type[JobListResponse]]:
    """The models that write `jobs`: the twins with native times when they fit, else the
    models themselves (a job, several jobs, a page)."""
    return _NATIVE if _native_times_fit(jobs) else _MODELS


def job_json(job: Job) -> bytes:
    """The JSON of `JobResponse.of(job)`, byte for byte, written faster when it can be."""
    item, _, _ = _models([job])
    return item.__pydantic_serializer__.to_json(item.of(job))


def jobs_json(jobs: list[Job]) -> bytes:
    """The JSON of a `JobsResponse` of `jobs` (the answer of a batch, an upload, a
    claim), byte for byte, written faster when it can be."""
    item, several, _ = _models(jobs)
    return several.__pydantic_serializer__.to_json(several(jobs=[item.of(j) for j in jobs]))


def job_list_json(jobs: list[Job], **fields: Any) -> bytes:
    """The JSON of a `JobListResponse` of `jobs` and the other `fields`, byte for byte,
    written faster when it can be."""
    item, _, page = _models(jobs)
    return page.__pydantic_serializer__.to_json(page(items=[item.of(j) for j in jobs], **fields))


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
