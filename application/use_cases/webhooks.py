"""Use cases of webhooks: register, see, pause, resume and delete them; read their
deliveries; send the due deliveries (those of a paused webhook wait).

Deliveries are written by `EngineBase._add_events`, in the transaction of the status
change they report. `deliver_webhooks` takes due ones under a lease in one short
transaction (skipping those another sender holds), posts them outside any transaction,
and records each result in another: a sender that dies mid-send leaves its deliveries
to be taken again when their lease ends, so a delivery may be posted twice then (the
receiver deduplicates by `webhook-id`), but never by two senders at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from chute.application.commands import field_problems
from chute.application.errors import FieldError, ValidationFailed, WebhookNotFound
from chute.application.ports import WebhookSender
from chute.application.queries import JobFilter
from chute.application.use_cases.base import EngineBase
from chute.application.webhooks import SendResult, Webhook
from chute.domain import Job, WebhookDelivery
from chute.domain.webhooks import (
    DEFAULT_WEBHOOK_EVENTS,
    DELIVERED,
    FAILED,
    GIVEN_UP,
    SECRET_PREFIX,
    check_description,
    check_events,
    check_webhook_url,
    retry_delay,
)

log = logging.getLogger("chute.engine")

DELIVERIES_SHOWN = 100  # the latest deliveries of a webhook that a list answers
MAX_PURGE_BATCH = 10_000


class Webhooks(EngineBase):
    async def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] | None = None,
        filter: JobFilter | None = None,
        description: str | None = None,
    ) -> Webhook:
        """Register a webhook; the answer carries its secret, which is never shown again."""
        sender = self._sender()
        wanted = tuple(DEFAULT_WEBHOOK_EVENTS if events is None else events)
        problems = field_problems(
            lambda: check_webhook_url(url),
            lambda: check_events(wanted),
            lambda: check_description(description),
        )
        if not any(p.loc == ("url",) for p in problems):
            reason = sender.refusal(url)
            if reason is not None:
                problems.append(FieldError(("url",), reason))
        if problems:
            raise ValidationFailed(problems)
        webhook = Webhook(
            id=self._ids.new_id(),
            url=url,
            events=check_events(wanted),
            filter=filter or JobFilter(),
            description=description,
            secret=SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode(),
            created_at=self._clock.now(),
        )
        async with self._uow() as uow:
            await uow.webhooks.add(webhook)
            await uow.commit()
        self._forget_webhooks()
        # The URL may carry a token in its query: only its id and events are logged.
        log.info("webhook.created", extra={"webhook_id": str(webhook.id), "events": webhook.events})
        return webhook

    async def list_webhooks(self) -> list[Webhook]:
        """Every webhook, oldest first."""
        async with self._uow(read_only=True) as uow:
            return await uow.webhooks.list()

    async def get_webhook(self, webhook_id: UUID) -> Webhook:
        """One webhook; `WebhookNotFound` when none has this id."""
        async with self._uow(read_only=True) as uow:
            found = await uow.webhooks.get(webhook_id)
        if found is None:
            raise WebhookNotFound(webhook_id)
        return found

    async def delete_webhook(self, webhook_id: UUID) -> None:
        """Remove a webhook and its deliveries (pending ones are not sent)."""
        async with self._uow() as uow:
            if not await uow.webhooks.delete(webhook_id):
                raise WebhookNotFound(webhook_id)
            await uow.commit()
        self._forget_webhooks()
        log.info("webhook.deleted", extra={"webhook_id": str(webhook_id)})

    async def pause_webhook(self, webhook_id: UUID, paused: bool = True) -> Webhook:
        """Pause a webhook, or resume it (`paused` False); `WebhookNotFound` when none
        has this id. While it is paused, changes still write its deliveries (nothing is
        lost) but no sender takes them: they wait, and on resume go out oldest first.
        Their give-up clock still counts from the change, as ever: one that waited
        past the policy's `give_up_after` (a day) is still sent once on resume, and
        given up if that attempt fails."""
        async with self._uow() as uow:
            if not await uow.webhooks.set_paused(webhook_id, paused):
                raise WebhookNotFound(webhook_id)
            webhook = await uow.webhooks.get(webhook_id)
            await uow.commit()
        assert webhook is not None
        self._forget_webhooks()
        log.info(
            "webhook.paused" if paused else "webhook.resumed",
            extra={"webhook_id": str(webhook_id)},
        )
        return webhook

    async def list_webhook_deliveries(
        self, webhook_id: UUID, limit: int = DELIVERIES_SHOWN
    ) -> list[WebhookDelivery]:
        """The latest deliveries of a webhook, newest first."""
        async with self._uow(read_only=True) as uow:
            if await uow.webhooks.get(webhook_id) is None:
                raise WebhookNotFound(webhook_id)
            return await uow.deliveries.latest(webhook_id, limit)

    async def deliver_webhooks(self, render: Callable[[Job], Any]) -> int:
        """Send one batch of due deliveries, each once, and record what came of it; the
        number sent (a full batch: call again). `render` gives a job's JSON value, the
        `data` of the payload."""
        sender, policy = self._sender(), self.webhook_policy
        async with self._uow() as uow:
            now = self._clock.now()
            lease = now + timedelta(seconds=policy.lease_seconds)
            taken = await uow.deliveries.claim_due(now, lease, policy.batch)
            webhooks = {w.id: w for w in await uow.webhooks.list()} if taken else {}
            jobs = {j.id: j for j in await uow.jobs.get_many([d.job_id for d in taken])}
            await uow.commit()
        if not taken:
            return 0
        results = await asyncio.gather(
            *(self._send_one(sender, d, webhooks.get(d.webhook_id), jobs, render) for d in taken)
        )
        async with self._uow() as uow:
            now = self._clock.now()
            outcomes = [
                self._settle(d, result, now) for d, result in zip(taken, results, strict=True)
            ]
            await uow.deliveries.update_many(taken)
            await uow.commit()
        for delivery, outcome in zip(taken, outcomes, strict=True):
            self._report(delivery, outcome)
        return len(taken)

    async def purge_webhook_deliveries(self, older_than: timedelta, batch: int = 1000) -> int:
        """Delete deliveries settled (delivered, or given up) longer than `older_than` ago,
        `batch` per transaction until a short one; how many went. Deliveries still to
        send stay, however old. Safe while senders run: rows they hold are skipped."""
        problems = []
        if older_than < timedelta(0):
            problems.append(FieldError(("older_than",), "must not be negative"))
        if not 1 <= batch <= MAX_PURGE_BATCH:
            problems.append(FieldError(("batch",), f"must be 1 to {MAX_PURGE_BATCH}"))
        if problems:
            raise ValidationFailed(problems)
        before = self._clock.now() - older_than
        purged = 0
        while True:
            async with self._uow() as uow:
                count = await uow.deliveries.purge_settled(before, batch)
                await uow.commit()
            purged += count
            if count < batch:
                break
        log.info("webhook_deliveries.purged", extra={"count": purged})
        return purged

    async def _send_one(
        self,
        sender: WebhookSender,
        delivery: WebhookDelivery,
        webhook: Webhook | None,
        jobs: dict[UUID, Job],
        render: Callable[[Job], Any],
    ) -> SendResult | None:
        """The result of posting `delivery`; None when there is nothing left to post to
        (its webhook was deleted meanwhile) or nothing to post (its job was purged)."""
        job = jobs.get(delivery.job_id)
        if webhook is None or job is None:
            return None
        payload = {
            "type": delivery.event_type,
            "timestamp": _rfc3339(delivery.created_at),
            "data": render(job),
        }
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        return await sender.send(
            webhook.url,
            webhook.secret,
            str(delivery.id),
            body,
            timeout_seconds=self.webhook_policy.timeout_seconds,
        )

    def _settle(self, delivery: WebhookDelivery, result: SendResult | None, now: datetime) -> str:
        """Record one attempt on `delivery`: `delivered`, `failed` (retried later) or
        `given_up`."""
        policy = self.webhook_policy
        if result is None:
            delivery.failed(
                now,
                None,
                "the webhook or the job no longer exists",
                retry_in=timedelta(0),
                give_up_after=timedelta(0),
            )
            return GIVEN_UP
        if result.delivered:
            assert result.status_code is not None
            delivery.delivered(now, result.status_code)
            return DELIVERED
        delay = retry_delay(
            delivery.attempts + 1,
            base=policy.retry_base_seconds,
            cap=policy.retry_cap_seconds,
            jitter=random.uniform(0.8, 1.2),
        )
        error = result.error or f"answered {result.status_code}"
        gave_up = delivery.failed(
            now,
            result.status_code,
            error,
            retry_in=delay,
            give_up_after=policy.give_up_after,
        )
        return GIVEN_UP if gave_up else FAILED

    def _report(self, delivery: WebhookDelivery, outcome: str) -> None:
        extra = {
            "webhook_id": str(delivery.webhook_id),
            "delivery_id": str(delivery.id),
            "status_code": delivery.last_status_code,
            "attempt": delivery.attempts,
            "result": outcome,
        }
        if outcome == DELIVERED:
            log.info("webhook.delivered", extra=extra)
        else:
            log.warning("webhook.failed", extra={**extra, "error": delivery.last_error})
        self.telemetry.webhook_delivered(outcome)

    def _sender(self) -> WebhookSender:
        if self._webhook_sender is None:
            raise RuntimeError(
                "this engine has no webhook sender: pass webhook_sender=HttpWebhookSender() "
                "(chute.adapters.webhooks) to use webhooks"
            )
        return self._webhook_sender


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
