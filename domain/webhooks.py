"""Webhooks: a URL told of job status changes, and the deliveries that tell it.

A delivery is written in the transaction of the change it reports (an outbox), so
that a crash loses none; senders then take due ones under a lease, post them signed as
the Standard Webhooks spec says, and retry what fails with a growing backoff until a
day has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from uuid import UUID

from chute.domain.errors import InvalidValue
from chute.domain.validation import check_text
from chute.domain.values import JobStatus

CREATED = "job.created"
# Every event type a webhook can ask for; a job's creation is `job.created` (not
# `job.pending`, which is a job going back to pending: a retry, a release, a rescue).
WEBHOOK_EVENTS: tuple[str, ...] = (
    CREATED,
    "job.pending",
    "job.running",
    "job.completed",
    "job.failed",
    "job.cancelled",
)
DEFAULT_WEBHOOK_EVENTS: tuple[str, ...] = ("job.completed", "job.failed", "job.cancelled")
SECRET_PREFIX = "whsec_"

# Result strings of one attempt, for logs and metrics.
DELIVERED, FAILED, GIVEN_UP = "delivered", "failed", "given_up"


def event_type(from_status: JobStatus | None, to_status: JobStatus) -> str | None:
    """The webhook event type of a status change, or None (`cancelling` has none)."""
    if from_status is None:
        return CREATED
    name = f"job.{to_status.value}"
    return name if name in WEBHOOK_EVENTS else None


@dataclass(slots=True, kw_only=True)
class WebhookDelivery:
    """One event to post to one webhook, and what became of the attempts so far.

    `next_attempt_at` is None once the delivery is settled (delivered, or given up);
    `lease_expires_at` is set while a sender holds it: another sender takes it only
    after the lease ends (its holder died).
    """

    id: UUID
    webhook_id: UUID
    event_type: str
    job_id: UUID
    created_at: datetime
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    given_up_at: datetime | None = None
    next_attempt_at: datetime | None = None
    lease_expires_at: datetime | None = field(default=None)

    def delivered(self, now: datetime, status_code: int) -> None:
        self.attempts += 1
        self.last_status_code, self.last_error = status_code, None
        self.delivered_at, self.next_attempt_at, self.lease_expires_at = now, None, None

    def failed(
        self,
        now: datetime,
        status_code: int | None,
        error: str,
        *,
        retry_in: timedelta,
        give_up_after: timedelta,
    ) -> bool:
        """Record a failed attempt; retry after `retry_in`, or give up (True) once
        `give_up_after` has passed since the event."""
        self.attempts += 1
        self.last_status_code, self.last_error = status_code, error
        self.lease_expires_at = None
        if now - self.created_at >= give_up_after:
            self.given_up_at, self.next_attempt_at = now, None
            tries = f"{self.attempts} attempt{'s' if self.attempts != 1 else ''}"
            self.last_error = f"given up after {tries}: {error}"
            return True
        self.next_attempt_at = now + retry_in
        return False


def retry_delay(attempts: int, *, base: float, cap: float, jitter: float) -> timedelta:
    """The wait after failed attempt number `attempts`: `jitter` * min(cap, base * 2^(n-1)),
    never past `cap`. `jitter` (about 1) is drawn by the caller, so that this stays pure."""
    exponent = min(max(attempts - 1, 0), 40)
    return timedelta(seconds=min(cap, jitter * min(cap, base * 2**exponent)))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header of the Standard Webhooks spec: `v1,` and the base64
    HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 1000


def check_webhook_url(url: str) -> str:
    """Return `url` when it is an absolute http(s) URL naming a host, else raise."""
    check_text("url", url)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidValue("url", f"at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidValue("url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise InvalidValue("url", f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidValue("url", "must be an absolute http or https URL")
    if not parts.hostname:
        raise InvalidValue("url", "must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidValue("url", "must not carry a user or password")
    return url


def check_events(events: tuple[str, ...]) -> tuple[str, ...]:
    """The event types, each once, in the order of `WEBHOOK_EVENTS`; at least one."""
    unknown = [e for e in events if e not in WEBHOOK_EVENTS]
    if unknown:
        raise InvalidValue(
            "events", f"unknown event type {unknown[0]!r}: one of {', '.join(WEBHOOK_EVENTS)}"
        )
    if not events:
        raise InvalidValue("events", "name at least one event type")
    return tuple(e for e in WEBHOOK_EVENTS if e in events)


def check_description(value: str | None) -> str | None:
    if value is None:
        return None
    check_text("description", value)
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValue("description", f"at most {MAX_DESCRIPTION_LENGTH} characters")
    return value
