"""`POST /api/v1/upload`: files streamed to storage, detected, and made into jobs."""

from typing import Any

from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.job_json import jobs_response
from chute.entrypoints.http.multipart import parse_upload
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.problems import errors_located_at
from chute.entrypoints.http.schemas.jobs import UploadResponse
from chute.entrypoints.http.schemas.upload import UPLOAD_ENCODING, UploadForm
from fastapi import APIRouter, Request, Response, status

router = APIRouter(prefix="/api/v1", tags=["upload"])


# The body is parsed as a stream, so FastAPI does not know its shape: `UploadForm` tells
# it (filed among the components by `chute.entrypoints.http.openapi`).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"$ref": f"#/components/schemas/{UploadForm.__name__}"},
                "encoding": UPLOAD_ENCODING,
            }
        },
    }
}


@router.post(
    "/upload",
    operation_id="upload_files",
    status_code=status.HTTP_201_CREATED,
    response_model=UploadResponse,
    responses=problem_responses(400, 413, 415, 422, 503, 507),
    openapi_extra=UPLOAD_BODY,
)
async def upload_files(request: Request, engine: Engine) -> Response:
    """Upload files: one job per file, in request order, all or none.

    Refusals come in this order: the request's shape (415 not multipart; 422 no file,
    too many, an unknown part, a bad field), then each file in turn: empty (422),
    too large (413), type not allowed (415). A refused upload leaves no file behind.
    """
    with errors_located_at("body"):
        async with engine.upload() as batch:
            options = await parse_upload(request, batch, engine.limits)
            jobs = await batch.submit(options)
    return jobs_response(jobs, status.HTTP_201_CREATED)
