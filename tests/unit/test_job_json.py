"""The JSON of jobs as the routes write it: the same bytes as the models."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import chute.entrypoints.http.job_json as job_json_module
import pytest
from asyncpg.pgproto.pgproto import UUID as PgUUID
from chute.domain import Job, JobStatus
from chute.entrypoints.http.job_json import (
    _detection,
    _job,
    job_json,
    job_list_json,
    jobs_json,
)
from chute.entrypoints.http.schemas.jobs import (
    DetectionResponse,
    JobListResponse,
    JobResponse,
    JobsResponse,
)
from chute.entrypoints.http.values import rfc3339
from pydantic import BaseModel

from tests.factories import make_detection, make_job

FRACTION = datetime(2026, 3, 1, 12, 30, 15, 250001, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
JOB_TIMES = (
    "created_at",
    "updated_at",
    "lease_expires_at",
    "run_after",
    "started_at",
    "finished_at",
)


def every_time(moment: datetime, **overrides: Any) -> Job:
    fields: dict[str, Any] = {name: moment for name in JOB_TIMES}
    fields["detection"] = make_detection(detected_at=moment)
    return make_job(
        status=JobStatus.RUNNING,
        metadata={"ünï": [1, 2.5e-7, 1e16, None, "日本\n"]},
        result={"pages": 3},
        **{**fields, **overrides},
    )


def as_the_models_write(job: Job) -> bytes:
    return JobResponse.of(job).model_dump_json().encode()


@pytest.mark.parametrize(
    "job",
    [
        every_time(FRACTION),  # UTC with a fraction: pydantic's own output
        every_time(FRACTION.replace(year=999)),
        every_time(FRACTION.replace(microsecond=0)),  # no fraction: rfc3339 writes .000000
        every_time(FRACTION, finished_at=FRACTION.replace(microsecond=0)),
        every_time(
            FRACTION,
            detection=make_detection(detected_at=FRACTION.replace(second=0, microsecond=0)),
        ),
        every_time(FRACTION.astimezone(INDIA)),  # another offset: rfc3339 writes UTC
        every_time(FRACTION, created_at=FRACTION.astimezone(timezone(timedelta(0)))),
        make_job(created_at=FRACTION, updated_at=FRACTION),  # times left null
    ],
)
def test_a_job_is_written_as_its_model_writes_it(job: Job) -> None:
    assert job_json(job) == as_the_models_write(job)


def test_a_page_is_written_as_its_model_writes_it() -> None:
    fields = dict(total=2, total_exact=True, page=1, limit=50, pages=1, next_cursor="abc")
    fit = [every_time(FRACTION), every_time(FRACTION + timedelta(seconds=1))]
    unfit = [*fit, every_time(FRACTION.replace(microsecond=0))]
    for jobs in (fit, unfit, []):
        page = JobListResponse(items=[JobResponse.of(job) for job in jobs], **fields)
        assert job_list_json(jobs, **fields) == page.model_dump_json().encode()


def test_several_jobs_are_written_as_their_model_writes_them() -> None:
    fit = [every_time(FRACTION), every_time(FRACTION + timedelta(seconds=1))]
    unfit = [*fit, every_time(FRACTION.replace(microsecond=0))]
    for jobs in (fit, unfit, []):
        answer = JobsResponse(jobs=[JobResponse.of(job) for job in jobs])
        assert jobs_json(jobs) == answer.model_dump_json().encode()


def test_the_writer_knows_every_field_and_every_time_of_a_job() -> None:
    def written_by_rfc3339(model: type[BaseModel]) -> set[str]:
        fields = model.model_fields.items()
        # `UtcTime` is in the metadata of a required field, in the annotation of an optional one.
        found = {name: repr((info.annotation, info.metadata)) for name, info in fields}
        return {name for name, text in found.items() if rfc3339.__qualname__ in text}

    assert written_by_rfc3339(JobResponse) == set(JOB_TIMES)
    assert written_by_rfc3339(DetectionResponse) == {"detected_at"}
    job = every_time(FRACTION)
    assert list(_job(job)) == list(JobResponse.model_fields)
    assert list(_detection(job.detection) or {}) == list(DetectionResponse.model_fields)


@pytest.mark.parametrize("where", ["metadata", "result"])
def test_an_integer_past_64_bits_is_written_by_the_models(where: str) -> None:
    job = replace(every_time(FRACTION), **{where: {"big": 2**70, "small": -(2**63)}})
    assert b'"big":1180591620717411303424' in job_json(job)
    assert job_json(job) == as_the_models_write(job)
    fields = dict(total=1, total_exact=True, page=1, limit=50, pages=1, next_cursor=None)
    page = JobListResponse(items=[JobResponse.of(job)], **fields)
    assert job_list_json([job], **fields) == page.model_dump_json().encode()
    assert jobs_json([job]) == JobsResponse.of([job]).model_dump_json().encode()


def test_ids_read_from_postgresql_are_written_without_the_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asyncpg reads a uuid column as its own subclass of UUID, which orjson does not
    know by itself: such a job must not fall back to the models (at their old cost)."""
    job = every_time(FRACTION)
    expected = as_the_models_write(job)
    job = replace(job, id=PgUUID(job.id.bytes))
    assert type(job.id) is not UUID
    monkeypatch.setattr(job_json_module, "JobResponse", None)  # the models: not used
    monkeypatch.setattr(job_json_module, "JobsResponse", None)
    monkeypatch.setattr(job_json_module, "JobListResponse", None)
    assert job_json(job) == expected
    assert jobs_json([job]) == b'{"jobs":[' + expected + b"]}"
