"""Worker routes under `/api/v1/jobs`: claim, heartbeat, complete, fail, release; content
(read, stored, detected again).

`POST /claim` never collides with the `/{job_id}` routes of `routes/jobs.py`: a templated
route never takes a path that another names literally (`chute.entrypoints.http.routing`), so
`GET /claim` answers 405 rather than reading `claim` as a job id.
"""

import json
import logging
from typing import Annotated, Any
from uuid import UUID

from chute.application import PayloadTooLarge, ValidationFailed
from chute.domain import Job
from chute.entrypoints.http.body_limit import LIMIT_KEY, BodyLimitedRoute
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.downloads import OCTET_STREAM, download_headers, opened
from chute.entrypoints.http.job_json import job_json, job_response, jobs_response
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.problems import errors_located_at, located_at, problem_members
from chute.entrypoints.http.schemas.jobs import JobResponse
from chute.entrypoints.http.schemas.workers import (
    ClaimRequest,
    ClaimResponse,
    CompleteManyRequest,
    CompleteManyResponse,
    CompleteRequest,
    FailRequest,
    HeartbeatRequest,
    RedetectRequest,
    ReleaseRequest,
    WorkerId,
)
from chute.entrypoints.http.values import Text, utf8_query
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

log = logging.getLogger("chute.http")

router = APIRouter(prefix="/api/v1/jobs", tags=["workers"], route_class=BodyLimitedRoute)


# Far above what valid requests need: an error is at most 8 KiB of UTF-8, which JSON's
# \u escapes may make six times longer.
MAX_REPORT_BODY = 64 * 1024
# A result is at most 1 MiB as compact UTF-8 JSON; sent with spaces and \u escapes
# (Python's default json.dumps) it may be several times that.
MAX_COMPLETE_BODY = 8 * 1024 * 1024
# Up to 100 results in one body: room for 16 such results as compact JSON, or many
# small ones. A client with larger results sends fewer at a time (`RemoteEngine` does).
MAX_COMPLETE_MANY_BODY = 16 * 1024 * 1024

_WORDING = {
    404: "No such job (`job-not-found`)",
    409: "The worker does not hold a live lease on the job (`lease-not-held`): another "
    "worker holds it, it is not running or cancelling, or its lease has ended",
    422: "Invalid input (`validation-error`)",
}


def _options(
    operation_id: str, model: type[BaseModel], body_limit: int, *statuses: int
) -> dict[str, Any]:
    """The route options of a worker's JSON request: its answer's model, its problems
    (`statuses`, and those of any JSON body) and its body limit."""
    return {
        "operation_id": operation_id,
        "response_model": model,
        "responses": problem_responses(*statuses, 413, 415, 422, descriptions=_WORDING),
        "openapi_extra": {LIMIT_KEY: body_limit},
    }


def _reporting(operation_id: str, body_limit: int = MAX_REPORT_BODY) -> dict[str, Any]:
    """The route options of a worker's report on one job it holds."""
    return _options(operation_id, JobResponse, body_limit, 404, 409)


@router.post("/claim", **_options("claim_jobs", ClaimResponse, MAX_REPORT_BODY))
async def claim_jobs(body: ClaimRequest, engine: Engine) -> Response:
    """Take up to `limit` due pending jobs, highest priority then oldest first, each now
    `running` under a lease of `lease_seconds` held by `worker_id`; possibly none."""
    with errors_located_at("body"):
        jobs = await engine.claim_jobs(
            body.worker_id,
            limit=body.limit,
            lease_seconds=body.lease_seconds,
            filter=body.to_filter(),
        )
    return jobs_response(jobs)


@router.post("/{job_id}/heartbeat", **_reporting("heartbeat_job"))
async def heartbeat_job(job_id: UUID, body: HeartbeatRequest, engine: Engine) -> Response:
    """Extend the lease of a held job (by `lease_seconds`, else by the length it was
    claimed with) and note its progress. A job that comes back `cancelling` tells the
    worker to stop and report with `complete` or `fail`."""
    with errors_located_at("body"):
        job = await engine.heartbeat(
            job_id,
            body.worker_id,
            lease_seconds=body.lease_seconds,
            progress=body.progress,
            progress_message=body.progress_message,
        )
    return job_response(job)


@router.post("/{job_id}/complete", **_reporting("complete_job", MAX_COMPLETE_BODY))
async def complete_job(job_id: UUID, body: CompleteRequest, engine: Engine) -> Response:
    """Report the work on a held job as done, with its result: `completed`, also from
    `cancelling` (the work was done, and its result is kept)."""
    with errors_located_at("body"):
        job = await engine.complete_job(job_id, body.worker_id, result=body.result)
    return job_response(job)


@router.post("/complete", **_options("complete_jobs", CompleteManyResponse, MAX_COMPLETE_MANY_BODY))
async def complete_jobs(body: CompleteManyRequest, engine: Engine) -> Response:
    """Report the work on 1 to 100 held jobs as done, in one transaction. Each item is
    taken as `POST /api/v1/jobs/{job_id}/complete` would take it, in order, and refused
    alone: the answer has one item per job, `{"job": ...}` or `{"problem": ...}` with
    the problem the single route would answer (a job named twice: the first item
    completes it, the second is refused as `lease-not-held`). With `claim`, the same
    transaction then claims the next jobs, as `POST /api/v1/jobs/claim` would: the
    answer's `jobs`."""
    completions = [(item.job_id, item.result) for item in body.jobs]
    claim = body.claim
    jobs: list[Job] = []  # the jobs claimed, with a `claim`
    with errors_located_at("body"):
        if claim is None:
            outcomes = await engine.complete_jobs(body.worker_id, completions)
        else:
            outcomes, jobs = await engine.complete_and_claim(
                body.worker_id,
                completions,
                limit=claim.limit,
                lease_seconds=claim.lease_seconds,
                filter=claim.to_filter(),
            )
    items = b",".join(_item_json(index, outcome) for index, outcome in enumerate(outcomes))
    claimed = b",".join(job_json(job) for job in jobs)
    answer = b'{"items":[' + items + b'],"jobs":[' + claimed + b"]}"
    return Response(answer, media_type="application/json")


def _item_json(index: int, outcome: Job | Exception) -> bytes:
    """One item of `complete_jobs`' answer."""
    if isinstance(outcome, Job):
        return b'{"job":' + job_json(outcome) + b"}"
    if isinstance(outcome, ValidationFailed):
        outcome = located_at(outcome, "body", "jobs", index)
    members = problem_members(outcome)
    if members["status"] == 500:
        log.error("http.item_error", exc_info=outcome, extra={"index": index})
    return b'{"problem":' + json.dumps(members).encode() + b"}"


@router.post("/{job_id}/fail", **_reporting("fail_job"))
async def fail_job(job_id: UUID, body: FailRequest, engine: Engine) -> Response:
    """Report a failed attempt: back to `pending` after a backoff while attempts are
    left and the error is retryable, else `failed`; a `cancelling` job ends `cancelled`."""
    with errors_located_at("body"):
        job = await engine.fail_job(job_id, body.worker_id, body.error, retryable=body.retryable)
    return job_response(job)


@router.get(
    "/{job_id}/content",
    operation_id="get_job_content",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The stored bytes, as an attachment of the job's `mime_type` "
            "(`application/octet-stream` when it has none); read them as bytes",
            # Bytes, whatever their type: generators read the first media type they know,
            # and `*/*` says that the job's own type comes too.
            "content": {
                OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
                "*/*": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(
            404,
            422,
            503,
            descriptions=_WORDING
            | {
                404: "No such job (`job-not-found`), or it has no stored content "
                "(`content-not-found`)"
            },
        ),
    },
)
async def get_job_content(job_id: UUID, engine: Engine) -> StreamingResponse:
    """The stored content of a job (an upload, or what a worker stored), streamed."""
    job, chunks = await engine.open_content(job_id)
    stream = await opened(job_id, chunks)
    # The headers carry Content-Type themselves: as `media_type`, Starlette would add
    # a charset to text types that the stored bytes may not be in.
    return StreamingResponse(stream, headers=download_headers(job))


@router.post("/{job_id}/release", **_reporting("release_job"))
async def release_job(job_id: UUID, body: ReleaseRequest, engine: Engine) -> Response:
    """Give a held job back unfinished (the worker is stopping): `pending` again at
    once, its attempt not counted, so that another worker takes it; a `cancelling`
    job becomes `cancelled`."""
    with errors_located_at("body"):
        job = await engine.release_job(job_id, body.worker_id)
    return job_response(job)


@router.post("/{job_id}/redetect", **_reporting("redetect_job_content"))
async def redetect_job_content(job_id: UUID, body: RedetectRequest, engine: Engine) -> Response:
    """Detect a held job's stored content again with the detector of `mode`; the job's
    `mime_type` and `detection` become what it found (404 `content-not-found` when the
    job has no stored content)."""
    with errors_located_at("body"):
        job = await engine.redetect_content(job_id, body.worker_id, body.mode)
    return job_response(job)


_CONTENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the bytes, as they are (any media type); streamed to storage",
        "content": {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/{job_id}/content",
    operation_id="store_job_content",
    response_model=JobResponse,
    dependencies=[Depends(utf8_query)],
    responses=problem_responses(400, 404, 409, 413, 422, 503, 507, descriptions=_WORDING),
    openapi_extra=_CONTENT_BODY,
)
async def store_job_content(
    job_id: UUID,
    request: Request,
    engine: Engine,
    worker_id: Annotated[WorkerId, Query()],
    filename: Annotated[
        Text | None, Query(max_length=1024, description="made safe as upload names are")
    ] = None,
) -> Response:
    """Store the request body as a held job's content (replacing any it had), detect
    it by the job's mode, and set its `file_name`, `file_size`, `mime_type` and
    `detection`. The lease is checked before a byte is read; a body over the upload
    limit (413) or one that ends early (400) leaves nothing stored."""
    limit = engine.limits.max_file_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The content is larger than {limit} bytes.")
    with errors_located_at("query"):
        job = await engine.store_content(job_id, worker_id, filename, request.stream())
    return job_response(job)
