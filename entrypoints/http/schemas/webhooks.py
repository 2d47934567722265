"""The JSON shapes of `/api/v1/webhooks`."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from chute.application import Webhook
from chute.application.queries import filter_to_json
from chute.domain import WebhookDelivery
from chute.domain.webhooks import (
    DEFAULT_WEBHOOK_EVENTS,
    MAX_DESCRIPTION_LENGTH,
    MAX_URL_LENGTH,
)
from chute.entrypoints.http.schemas.bulk import BulkFilter
from chute.entrypoints.http.values import Text, UtcTime
from pydantic import BaseModel, ConfigDict, Field, StrictBool


class WebhookEvent(StrEnum):
    """The event types of webhooks (one shared component of the OpenAPI description);
    tests/e2e/test_webhooks_api.py checks that they are the domain's."""

    CREATED = "job.created"
    PENDING = "job.pending"
    RUNNING = "job.running"
    COMPLETED = "job.completed"
    FAILED = "job.failed"
    CANCELLED = "job.cancelled"


def _final_events() -> list[WebhookEvent]:
    return [WebhookEvent(name) for name in DEFAULT_WEBHOOK_EVENTS]


class WebhookRequest(BaseModel):
    """A URL to post job events to, the events, and the jobs they are about."""

    model_config = ConfigDict(extra="forbid")

    url: Text = Field(
        description="an absolute http or https URL; a literal private, loopback or "
        "link-local address is refused unless the server allows private addresses",
        examples=["https://example.org/hooks/chute"],
        max_length=MAX_URL_LENGTH,
    )
    events: list[WebhookEvent] = Field(
        default_factory=_final_events,
        min_length=1,
        description="the event types to post; default: the three final ones",
    )
    filter: BulkFilter | None = Field(
        None, description="only events of the jobs this filter selects (as the bulk actions')"
    )
    description: Text | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)


class WebhookUpdateRequest(BaseModel):
    """Pause a webhook, or resume it."""

    model_config = ConfigDict(extra="forbid")

    paused: StrictBool = Field(
        description="true: its deliveries are still written but none is sent; false: "
        "they go out, oldest first (each still given up a day after its change, once an "
        "attempt fails)"
    )


class WebhookResponse(BaseModel):
    """A webhook; its secret is shown only when it is created."""

    id: UUID
    url: str
    events: list[str]
    filter: dict[str, Any] = Field(description="the job filter, as given (empty: every job)")
    description: str | None
    created_at: UtcTime
    paused: bool = Field(description="true: its deliveries wait, unsent, until it is resumed")

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookResponse:
        return cls(
            id=webhook.id,
            url=webhook.url,
            events=list(webhook.events),
            filter=filter_to_json(webhook.filter),
            description=webhook.description,
            created_at=webhook.created_at,
            paused=webhook.paused,
        )


class WebhookCreatedResponse(WebhookResponse):
    """A new webhook, with the secret that signs its deliveries: shown this once."""

    secret: str = Field(
        description="`whsec_` and the base64 of 32 random bytes; the key of every "
        "delivery's signature. It is never shown again."
    )

    @classmethod
    def created(cls, webhook: Webhook) -> WebhookCreatedResponse:
        return cls(**WebhookResponse.of(webhook).model_dump(), secret=webhook.secret)


class WebhookListResponse(BaseModel):
    """Every webhook, oldest first."""

    items: list[WebhookResponse]


class DeliveryResponse(BaseModel):
    """One event sent (or to send) to a webhook, and what came of it so far."""

    id: UUID = Field(description="also the `webhook-id` header of every attempt")
    event_type: str
    job_id: UUID
    attempts: int
    last_status_code: int | None = Field(description="the receiver's last answer, if any")
    last_error: str | None = Field(description="why the last attempt failed, or gave up")
    delivered_at: UtcTime | None
    next_attempt_at: UtcTime | None = Field(
        description="null once delivered, or given up (`last_error` then says so)"
    )

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryResponse:
        return cls(
            id=delivery.id,
            event_type=delivery.event_type,
            job_id=delivery.job_id,
            attempts=delivery.attempts,
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            next_attempt_at=delivery.next_attempt_at,
        )


class DeliveryListResponse(BaseModel):
    """The latest deliveries of a webhook (at most 100), newest first."""

    items: list[DeliveryResponse]
