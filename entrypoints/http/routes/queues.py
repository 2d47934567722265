"""`/api/v1/queues`: see queues with their counts; pause, resume and limit them."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
from typing import Annotated

from chute.entrypoints.http.body_limit import LIMIT_KEY, BodyLimitedRoute
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.problems import errors_located_at
from chute.entrypoints.http.schemas.queues import (
    QueueListResponse,
    QueueResponse,
    QueueUpdateRequest,
)
from chute.entrypoints.http.values import QueueName
from fastapi import APIRouter, Path

router = APIRouter(prefix="/api/v1/queues", tags=["queues"], route_class=BodyLimitedRoute)

MAX_QUEUE_BODY = 4 * 1024  # two small fields
Name = Annotated[QueueName, Path(description="1 to 64 characters of a-z, 0-9, `_`, `.` and `-`")]
_WORDING = {404: "No job or setting names the queue (`queue-not-found`)"}


@router.get("", operation_id="list_queues", response_model=QueueListResponse)
async def list_queues(engine: Engine) -> QueueListResponse:
    """Every queue some job or some setting names, by name, with its counts."""
    views = await engine.list_queues()
    return QueueListResponse(items=[QueueResponse.of(view) for view in views])


@router.get(
    "/{name}",
    operation_id="get_queue",
    response_model=QueueResponse,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def get_queue(name: Name, engine: Engine) -> QueueResponse:
    """One queue, with its counts."""
    return QueueResponse.of(await engine.get_queue(name))


@router.patch(
    "/{name}",
    operation_id="update_queue",
    response_model=QueueResponse,
    responses=problem_responses(413, 415, 422),
    openapi_extra={LIMIT_KEY: MAX_QUEUE_BODY},
)
async def update_queue(name: Name, body: QueueUpdateRequest, engine: Engine) -> QueueResponse:
    """Pause or resume a queue, or set or lift its concurrency limit; a queue no job
    names yet gets its settings now, so that they hold when its jobs arrive."""
    with errors_located_at("body"):
        view = await engine.update_queue(name, body.to_change())
    return QueueResponse.of(view)
