"""`/api/v1/jobs`: create (one or a batch), list, read, cancel and retry jobs (one or
many)."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
import math
from typing import Annotated
from uuid import UUID

from chute.domain import JobStatus
from chute.entrypoints.http.body_limit import LIMIT_KEY, BodyLimitedRoute
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.job_json import job_list_response, job_response, jobs_response
from chute.entrypoints.http.openapi import problem_responses, success_response
from chute.entrypoints.http.problems import errors_located_at
from chute.entrypoints.http.schemas.bulk import BulkRequest, BulkResponse
from chute.entrypoints.http.schemas.jobs import (
    BatchCreateRequest,
    BatchCreateResponse,
    JobCreateRequest,
    JobEventListResponse,
    JobListQuery,
    JobListResponse,
    JobResponse,
)
from chute.entrypoints.http.stream import wait_for_end
from fastapi import APIRouter, Header, Query, Request, Response, status

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], route_class=BodyLimitedRoute)

# Far above what valid requests need (a job is a few KiB of JSON besides its metadata
# of at most 16 KiB); the bound keeps a client from making the server parse gigabytes.
MAX_JOB_BODY = 1024 * 1024
MAX_BATCH_BODY = 64 * 1024 * 1024
# 1000 ids are about 40 KiB of JSON; a filter far less.
MAX_BULK_BODY = 256 * 1024

CHANGED = "Chute-Changed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x20-\x7e]+$",
        description="1 to 255 printable ASCII characters; the same key and body within "
        "24 hours return the first answer (200) instead of creating again",
    ),
]


@router.post(
    "",
    operation_id="create_job",
    status_code=status.HTTP_201_CREATED,
    response_model=JobResponse,
    responses={
        200: success_response(JobResponse, "Replayed"),
        **problem_responses(409, 413, 415, 422),
    },
    openapi_extra={LIMIT_KEY: MAX_JOB_BODY},
)
async def create_job(
    body: JobCreateRequest, engine: Engine, key: IdempotencyKey = None
) -> Response:
    """Create a job from a URL or an S3 object (201, or 200 when the key replays)."""
    with errors_located_at("body"):
        submission = await engine.create_job(body.to_new_job(), idempotency_key=key)
    return job_response(
        submission.job,
        status.HTTP_200_OK if submission.replayed else status.HTTP_201_CREATED,
        {"Location": f"{router.prefix}/{submission.job.id}"},
    )


@router.post(
    "/batch",
    operation_id="create_jobs",
    status_code=status.HTTP_201_CREATED,
    response_model=BatchCreateResponse,
    responses={
        200: success_response(BatchCreateResponse, "Replayed"),
        **problem_responses(409, 413, 415, 422),
    },
    openapi_extra={LIMIT_KEY: MAX_BATCH_BODY},
)
async def create_jobs(
    body: BatchCreateRequest, engine: Engine, key: IdempotencyKey = None
) -> Response:
    """Create 1 to 1000 jobs at once, all or none, in request order."""
    with errors_located_at("body", "jobs"):
        submission = await engine.create_jobs(body.to_new_jobs(), idempotency_key=key)
    replayed = submission.replayed
    return jobs_response(
        submission.jobs, status.HTTP_200_OK if replayed else status.HTTP_201_CREATED
    )


@router.post(
    "/cancel",
    operation_id="cancel_jobs",
    response_model=BulkResponse,
    responses=problem_responses(413, 415, 422),
    openapi_extra={LIMIT_KEY: MAX_BULK_BODY},
)
async def cancel_jobs(body: BulkRequest, engine: Engine) -> BulkResponse:
    """Cancel many jobs, by `ids` (1 to 1000) or by `filter` (at most `limit`, oldest
    first), each as `DELETE /api/v1/jobs/{job_id}` would; others are `unchanged`."""
    with errors_located_at(*_bulk_loc(body)):
        return BulkResponse.of(await engine.cancel_jobs(body.to_selection()))


@router.post(
    "/retry",
    operation_id="retry_jobs",
    response_model=BulkResponse,
    responses=problem_responses(413, 415, 422),
    openapi_extra={LIMIT_KEY: MAX_BULK_BODY},
)
async def retry_jobs(body: BulkRequest, engine: Engine) -> BulkResponse:
    """Queue many failed or cancelled jobs again, by `ids` (1 to 1000) or by `filter`
    (at most `limit`, oldest first), each as `POST /api/v1/jobs/{job_id}/retry` would;
    others are `unchanged`."""
    with errors_located_at(*_bulk_loc(body)):
        return BulkResponse.of(await engine.retry_jobs(body.to_selection()))


def _bulk_loc(body: BulkRequest) -> tuple[str, ...]:
    # The engine names a filter's fields (metadata.<key>, mime_type) or `limit`.
    return ("body",) if body.filter is None else ("body", "filter")


@router.get(
    "",
    operation_id="list_jobs",
    response_model=JobListResponse,
    responses=problem_responses(422),
)
async def list_jobs(query: Annotated[JobListQuery, Query()], engine: Engine) -> Response:
    """One page of jobs, by page number or by the cursor of the page before.

    `total` counts the matching jobs up to a cap (CHUTE_COUNT_CAP, 1,000 by default),
    so that a count never passes over a million rows: when more match, `total` is the
    cap, `total_exact` is false and `pages` follows the cap. Walk large lists by
    `next_cursor` (each page costs the same however deep), with `count=false` when
    `total` is not needed; a deep `page` makes the database skip every row before it.

    `metadata.<key>=<value>` (up to 5, each key once) keeps the jobs whose metadata has
    the top-level key with that value: a JSON string equal to it, or a number, true,
    false or null whose JSON text is exactly it.
    """
    with errors_located_at("query"):
        page = await engine.list_jobs(
            filter=query.to_filter(),
            sort=query.sort,
            limit=query.limit,
            page=query.page,
            cursor=query.cursor,
            count=query.count,
        )
    total = page.total
    return job_list_response(
        page.items,
        total=total,
        total_exact=page.total_exact,
        page=None if query.cursor is not None else query.page,
        limit=query.limit,
        pages=None if total is None else math.ceil(total / query.limit),
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{job_id}",
    operation_id="get_job",
    response_model=JobResponse,
    responses=problem_responses(404, 422),
)
async def get_job(
    job_id: UUID,
    engine: Engine,
    request: Request,
    wait: Annotated[
        int | None,
        Query(ge=1, le=60, description="seconds to wait for the job to end before answering"),
    ] = None,
) -> Response:
    """One job, with its detection result. With `wait`, the answer comes as soon as the
    job is completed, failed or cancelled, or after `wait` seconds, as the job is then."""
    job = await engine.get_job(job_id)
    if wait is not None and not job.status.is_terminal:
        job = await wait_for_end(request.app.state.feed, engine, job_id, wait)
    return job_response(job)


@router.delete(
    "/{job_id}",
    operation_id="cancel_job",
    response_model=JobResponse,
    responses={
        202: success_response(JobResponse, "Cancelling: the worker stops"),
        **problem_responses(404, 409, 422),
    },
)
async def cancel_job(job_id: UUID, engine: Engine) -> Response:
    """Cancel a job: pending ones at once (200), running ones when their worker stops (202).
    `Chute-Changed: false` says the job was cancelled (or cancelling) already."""
    cancellation = await engine.cancel_job(job_id)
    stopping = cancellation.changed and cancellation.job.status is JobStatus.CANCELLING
    return job_response(
        cancellation.job,
        status.HTTP_202_ACCEPTED if stopping else status.HTTP_200_OK,
        # Whether this call changed the job: a client (the remote engine) tells a
        # cancel from a repeat that found it cancelled already, as the engine does.
        {CHANGED: "true" if cancellation.changed else "false"},
    )


@router.post(
    "/{job_id}/retry",
    operation_id="retry_job",
    response_model=JobResponse,
    responses=problem_responses(404, 409, 422),
)
async def retry_job(job_id: UUID, engine: Engine) -> Response:
    """Queue a failed or cancelled job again, allowing one more attempt."""
    return job_response(await engine.retry_job(job_id))


@router.get(
    "/{job_id}/events",
    operation_id="list_job_events",
    response_model=JobEventListResponse,
    responses=problem_responses(404, 422),
)
async def list_job_events(job_id: UUID, engine: Engine) -> JobEventListResponse:
    """Every status change of a job, oldest first, creation included."""
    return JobEventListResponse.of(await engine.list_job_events(job_id))
