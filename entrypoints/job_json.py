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
from chute.entrypoints.schemas import (
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


def job_json(job: Job) -> bytes:
    """The JSON of `JobResponse.of(job)`, byte for byte, written faster when it can be."""
    model = _JobNativeTimes if _native_times_fit([job]) else JobResponse
    return model.__pydantic_serializer__.to_json(model.of(job))


def job_list_json(jobs: list[Job], **fields: Any) -> bytes:
    """The JSON of a `JobListResponse` of `jobs` and the other `fields`, byte for byte,
    written faster when it can be."""
    item: type[JobResponse] = JobResponse
    model: type[JobListResponse] = JobListResponse
    if _native_times_fit(jobs):
        item, model = _JobNativeTimes, _ListNativeTimes
    page = model(items=[item.of(job) for job in jobs], **fields)
    return model.__pydantic_serializer__.to_json(page)


def jobs_json(jobs: list[Job]) -> bytes:
    """The JSON of a `JobsResponse` of `jobs` (the answer of a batch, an upload, a
    claim), byte for byte, written faster when it can be."""
    item: type[JobResponse] = JobResponse
    model: type[JobsResponse] = JobsResponse
    if _native_times_fit(jobs):
        item, model = _JobNativeTimes, _JobsNativeTimes
    return model.__pydantic_serializer__.to_json(model(jobs=[item.of(job) for job in jobs]))


def job_response(
    job: Job, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """An answer of one job."""
    return Response(job_json(job), status_code, headers, media_type="application/json")


def jobs_response(jobs: list[Job], status_code: int = 200) -> Response:
    """An answer of several jobs: `{"jobs": [...]}`."""
    return Response(jobs_json(jobs), status_code, media_type="application/json")
