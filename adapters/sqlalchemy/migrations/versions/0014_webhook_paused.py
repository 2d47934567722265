"""A webhook can be paused: the `webhooks.paused` column.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

Written by hand, like the others. While a webhook is paused its deliveries are still
written (the outbox loses nothing) but no sender takes them: they wait, and go out
when it is resumed. Every webhook there is stays as it was: not paused. No index: the
due deliveries are still found by their own index, and the few webhooks by their key.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhooks",
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("webhooks", "paused")
