"""Health checks: `/healthz` (the process serves) and `/readyz` (it can do its work)."""

import logging

from chute.application import ServiceUnavailable
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.schemas.jobs import StatusResponse
from fastapi import APIRouter

router = APIRouter(tags=["health"])
log = logging.getLogger("chute.http")


@router.get("/healthz", operation_id="healthz", response_model=StatusResponse)
async def healthz() -> StatusResponse:
    """200 while the process serves requests."""
    return StatusResponse(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=StatusResponse,
    responses=problem_responses(503),
)
async def readyz(engine: Engine) -> StatusResponse:
    """200 when the database answers a query and the storage accepts a write and a delete."""
    try:
        await engine.check_ready()
    except ServiceUnavailable:
        raise
    except Exception as exc:
        # Whatever broke, the answer is "not ready": a probe must not see a 500.
        log.warning("http.not_ready", exc_info=True)
        raise ServiceUnavailable("not ready") from exc
    return StatusResponse(status="ready")
