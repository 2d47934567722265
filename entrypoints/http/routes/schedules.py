"""`/api/v1/schedules`: jobs created at the times of a cron expression."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
from typing import Annotated

from chute.entrypoints.http.body_limit import LIMIT_KEY, BodyLimitedRoute
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.openapi import problem_responses, success_response
from chute.entrypoints.http.problems import errors_located_at
from chute.entrypoints.http.schemas.schedules import (
    ScheduleListResponse,
    ScheduleRequest,
    ScheduleResponse,
)
from chute.entrypoints.http.values import QueueName
from fastapi import APIRouter, Path, Response, status

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"], route_class=BodyLimitedRoute)

MAX_SCHEDULE_BODY = 64 * 1024  # a job's body (16 KiB of metadata at most) and three fields
Name = Annotated[QueueName, Path(description="1 to 64 characters of a-z, 0-9, `_`, `.` and `-`")]
_WORDING = {404: "No schedule has this name (`schedule-not-found`)"}


@router.get("", operation_id="list_schedules", response_model=ScheduleListResponse)
async def list_schedules(engine: Engine) -> ScheduleListResponse:
    """Every schedule, by name."""
    schedules = await engine.list_schedules()
    return ScheduleListResponse(items=[ScheduleResponse.of(s) for s in schedules])


@router.get(
    "/{name}",
    operation_id="get_schedule",
    response_model=ScheduleResponse,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def get_schedule(name: Name, engine: Engine) -> ScheduleResponse:
    """One schedule, with its next and last runs."""
    return ScheduleResponse.of(await engine.get_schedule(name))


@router.put(
    "/{name}",
    operation_id="put_schedule",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleResponse,
    responses={
        200: success_response(ScheduleResponse, "Replaced"),
        **problem_responses(413, 415, 422),
    },
    openapi_extra={LIMIT_KEY: MAX_SCHEDULE_BODY},
)
async def put_schedule(
    name: Name, body: ScheduleRequest, engine: Engine, response: Response
) -> ScheduleResponse:
    """Create a schedule (201) or replace it (200); the change holds from its next tick."""
    with errors_located_at("body"):
        saved = await engine.put_schedule(name, body.to_spec())
    if not saved.created:
        response.status_code = status.HTTP_200_OK
    return ScheduleResponse.of(saved.schedule)


@router.delete(
    "/{name}",
    operation_id="delete_schedule",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def delete_schedule(name: Name, engine: Engine) -> Response:
    """Delete a schedule: no tick of it creates a job any more (its jobs stay)."""
    await engine.delete_schedule(name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
