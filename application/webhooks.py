"""Webhooks as the use cases see them: the registration (with its job filter), the
retry policy of deliveries, and what one attempt to send came to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from chute.application.queries import JobFilter
from chute.domain.webhooks import DEFAULT_WEBHOOK_EVENTS


@dataclass(slots=True, kw_only=True)
class Webhook:
    """A URL told of job events: those of `events`, for the jobs `filter` selects.
    `secret` signs every delivery; the API shows it once, at creation.

    While `paused`, its deliveries are still written (the outbox keeps them) but no
    sender takes them: they wait, and go out oldest first once it is resumed, their
    give-up clock counted from the change as ever."""

    id: UUID
    url: str
    events: tuple[str, ...] = DEFAULT_WEBHOOK_EVENTS
    filter: JobFilter = field(default_factory=JobFilter)
    description: str | None = None
    secret: str
    created_at: datetime
    paused: bool = False


@dataclass(frozen=True, kw_only=True)
class WebhookPolicy:
    """How deliveries are sent and retried.

    A failed attempt is retried after about `retry_base_seconds`, doubling, at most
    `retry_cap_seconds` apart, until `give_up_after` has passed since the event. A sender
    holds a delivery for `lease_seconds` (longer than a send may take): a sender that
    died mid-send leaves it to another after that.
    """

    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 3600.0
    give_up_after: timedelta = timedelta(hours=24)
    timeout_seconds: float = 10.0
    batch: int = 50  # deliveries taken by one sender at once

    @property
    def lease_seconds(self) -> float:
        return 2 * self.timeout_seconds + 5.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one POST came to: delivered (a 2xx answer), or why not (`error`), with the
    answer's status code when there was one."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
