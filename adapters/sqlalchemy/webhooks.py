"""Webhooks and their deliveries in the `webhooks` and `webhook_deliveries` tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from chute.adapters.sqlalchemy.group_commit import Insert
from chute.adapters.sqlalchemy.repositories import SqlRepository
from chute.adapters.sqlalchemy.rows import delivery_row, to_delivery, to_webhook, webhook_row
from chute.adapters.sqlalchemy.tables import webhook_deliveries, webhooks
from chute.application.ports import WebhookDeliveryRepository, WebhookRepository
from chute.application.webhooks import Webhook
from chute.domain import WebhookDelivery
from sqlalchemy import bindparam, delete, exists, insert, or_, select, update

_d = webhook_deliveries.c
# The deliveries of a paused webhook wait: no claim takes them. NOT EXISTS, not a join,
# so that a delivery whose webhook was deleted meanwhile is still taken (and given up),
# and the due index still leads: each due row costs one look-up of its webhook's key.
_NOT_PAUSED = ~exists().where(webhooks.c.id == _d.webhook_id, webhooks.c.paused)
_SETTLE = (
    update(webhook_deliveries)
    .where(_d.id == bindparam("key"))
    .values(
        attempts=bindparam("attempts"),
        last_status_code=bindparam("last_status_code"),
        last_error=bindparam("last_error"),
        delivered_at=bindparam("delivered_at"),
        given_up_at=bindparam("given_up_at"),
        next_attempt_at=bindparam("next_attempt_at"),
        lease_expires_at=bindparam("lease_expires_at"),
    )
)
_SETTLED = (
    "attempts",
    "last_status_code",
    "last_error",
    "delivered_at",
    "given_up_at",
    "next_attempt_at",
    "lease_expires_at",
)


class SqlWebhookRepository(SqlRepository, WebhookRepository):
    """Webhooks, one row each."""

    async def add(self, webhook: Webhook) -> None:
        await self._db.write(insert(webhooks).values(webhook_row(webhook)))

    async def get(self, webhook_id: UUID) -> Webhook | None:
        stmt = select(webhooks).where(webhooks.c.id == webhook_id)
        row = (await self._db.read(stmt)).mappings().first()
        return to_webhook(row) if row else None

    async def list(self) -> list[Webhook]:
        # Read as committed: a deferred create looks up the webhooks after its inserts,
        # which must stay held for group commit (see `EngineBase._add_events`).
        stmt = select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id)
        return [to_webhook(row) for row in (await self._db.read_committed(stmt)).mappings()]

    async def delete(self, webhook_id: UUID) -> bool:
        await self._db.write(delete(webhook_deliveries).where(_d.webhook_id == webhook_id))
        stmt = delete(webhooks).where(webhooks.c.id == webhook_id)
        return bool((await self._db.write(stmt)).rowcount)

    async def set_paused(self, webhook_id: UUID, paused: bool) -> bool:
        stmt = update(webhooks).where(webhooks.c.id == webhook_id).values(paused=paused)
        return bool((await self._db.write(stmt)).rowcount)


class SqlWebhookDeliveryRepository(SqlRepository, WebhookDeliveryRepository):
    """The outbox of job events: one row per delivery of an event to a webhook."""

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if deliveries:
            rows = [delivery_row(delivery) for delivery in deliveries]
            await self._db.insert(Insert(webhook_deliveries, rows))

    async def latest(self, webhook_id: UUID, limit: int) -> list[WebhookDelivery]:
        stmt = (
            select(webhook_deliveries)
            .where(_d.webhook_id == webhook_id)
            .order_by(_d.created_at.desc(), _d.id.desc())
            .limit(limit)
        )
        return [to_delivery(row) for row in (await self._db.read(stmt)).mappings()]

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookDelivery]:
        stmt = (
            select(webhook_deliveries)
            .where(
                _d.next_attempt_at.isnot(None),
                _d.next_attempt_at <= now,
                or_(_d.lease_expires_at.is_(None), _d.lease_expires_at <= now),
                _NOT_PAUSED,
            )
            .order_by(_d.next_attempt_at, _d.id)
            .limit(limit)
        )
        if self._dialect == "postgresql":
            # Another sender taking deliveries holds their rows: leave them to it, as
            # claims do with jobs. SQLite's write transaction holds the whole file.
            stmt = stmt.with_for_update(skip_locked=True)
        taken = [to_delivery(row) for row in (await self._db.write(stmt)).mappings()]
        if taken:
            held = update(webhook_deliveries).where(_d.id.in_([d.id for d in taken]))
            await self._db.write(held.values(lease_expires_at=lease_until))
            for delivery in taken:
                delivery.lease_expires_at = lease_until
        return taken

    async def update_many(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if not deliveries:
            return
        rows = [{"key": d.id, **{name: getattr(d, name) for name in _SETTLED}} for d in deliveries]
        # A delivery whose webhook was deleted meanwhile is gone with it: no row, no error.
        await self._db.write(_SETTLE, rows)

    async def purge_settled(self, before: datetime, limit: int) -> int:
        # NULL < before is not true: a time not set never matches.
        settled = (
            select(_d.id)
            .where(
                _d.next_attempt_at.is_(None),  # never one still to send, whatever else it says
                or_(_d.delivered_at < before, _d.given_up_at < before),
            )
            .limit(limit)
        )
        if self._dialect == "postgresql":
            # Rows a sender is writing are left to it: the next purge takes them.
            settled = settled.with_for_update(skip_locked=True)
        stmt = delete(webhook_deliveries).where(_d.id.in_(settled))
        return (await self._db.write(stmt)).rowcount
