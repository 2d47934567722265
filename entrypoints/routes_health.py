"""Health checks: `/healthz` (the process serves) and `/readyz` (it can do its work)."""

import logging
from typing import Annotated

from chute.application import OrchestrationEngine, ServiceUnavailable
from chute.entrypoints.container import request_engine
from chute.entrypoints.openapi import problem_responses
from chute.entrypoints.schemas import StatusResponse
from fastapi import APIRouter, Depends

router = APIRouter(tags=["health"])
log = logging.getLogger("chute.http")

Engine = Annotated[OrchestrationEngine, Depends(request_engine)]


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
    """200 when the database answers a query and the storage folder accepts a write."""
    try:
        await engine.check_ready()
    except ServiceUnavailable:
        raise
    except Exception as exc:
        # Whatever broke, the answer is "not ready": a probe must not see a 500.
        log.warning("http.not_ready", exc_info=True)
        raise ServiceUnavailable("not ready") from exc
    return StatusResponse(status="ready")
