"""`/api/v1/webhooks`: URLs told of job status changes, by signed POSTs."""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
from typing import Annotated
from uuid import UUID

from chute.entrypoints.http.body_limit import LIMIT_KEY, BodyLimitedRoute
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.openapi import problem_responses
from chute.entrypoints.http.problems import errors_located_at
from chute.entrypoints.http.schemas.webhooks import (
    DeliveryListResponse,
    DeliveryResponse,
    WebhookCreatedResponse,
    WebhookListResponse,
    WebhookRequest,
    WebhookResponse,
    WebhookUpdateRequest,
)
from fastapi import APIRouter, Path, Response, status

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=BodyLimitedRoute)

MAX_WEBHOOK_BODY = 16 * 1024  # a URL, a description, six event types and a filter
MAX_WEBHOOK_UPDATE_BODY = 1024  # one flag
WebhookId = Annotated[UUID, Path(description="the webhook's id")]
_WORDING = {404: "No webhook has this id (`webhook-not-found`)"}


@router.post(
    "",
    operation_id="create_webhook",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreatedResponse,
    responses=problem_responses(413, 415, 422),
    openapi_extra={LIMIT_KEY: MAX_WEBHOOK_BODY},
)
async def create_webhook(body: WebhookRequest, engine: Engine) -> WebhookCreatedResponse:
    """Register a webhook. The answer carries its `secret`, shown this once."""
    job_filter = body.filter.to_filter() if body.filter is not None else None
    with errors_located_at("body"):
        webhook = await engine.create_webhook(
            body.url, events=body.events, filter=job_filter, description=body.description
        )
    return WebhookCreatedResponse.created(webhook)


@router.get("", operation_id="list_webhooks", response_model=WebhookListResponse)
async def list_webhooks(engine: Engine) -> WebhookListResponse:
    """Every webhook, oldest first (without their secrets)."""
    return WebhookListResponse(items=[WebhookResponse.of(w) for w in await engine.list_webhooks()])


@router.get(
    "/{webhook_id}",
    operation_id="get_webhook",
    response_model=WebhookResponse,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def get_webhook(webhook_id: WebhookId, engine: Engine) -> WebhookResponse:
    """One webhook (without its secret)."""
    return WebhookResponse.of(await engine.get_webhook(webhook_id))


@router.patch(
    "/{webhook_id}",
    operation_id="update_webhook",
    response_model=WebhookResponse,
    responses=problem_responses(404, 413, 415, 422, descriptions=_WORDING),
    openapi_extra={LIMIT_KEY: MAX_WEBHOOK_UPDATE_BODY},
)
async def update_webhook(
    webhook_id: WebhookId, body: WebhookUpdateRequest, engine: Engine
) -> WebhookResponse:
    """Pause a webhook (its deliveries are still written, but none is sent: they wait)
    or resume it (they go out, oldest first). Answers the webhook as GET does."""
    return WebhookResponse.of(await engine.pause_webhook(webhook_id, body.paused))


@router.delete(
    "/{webhook_id}",
    operation_id="delete_webhook",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def delete_webhook(webhook_id: WebhookId, engine: Engine) -> Response:
    """Delete a webhook and its deliveries: nothing more is sent to it."""
    await engine.delete_webhook(webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    response_model=DeliveryListResponse,
    responses=problem_responses(404, 422, descriptions=_WORDING),
)
async def list_webhook_deliveries(webhook_id: WebhookId, engine: Engine) -> DeliveryListResponse:
    """The latest 100 deliveries of a webhook, newest first: attempts, last answer,
    next attempt."""
    deliveries = await engine.list_webhook_deliveries(webhook_id)
    return DeliveryListResponse(items=[DeliveryResponse.of(d) for d in deliveries])
