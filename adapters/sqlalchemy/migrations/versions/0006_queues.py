"""Queues: the queue and schedule of each job, the settings of queues, their indexes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Written by hand, like the others, so that this revision never changes when the
application code does. Every job there was is in the queue `default` (the column's
server default fills it in, on both databases, without rewriting rows one by one) and
was made by no schedule.

- `queues`: one row for each queue an operator paused or limited; a queue without one
  is unpaused and unlimited.
- `ix_jobs_queue_status_priority_desc_created_at_id`: claiming from one queue in claim
  order, and counting a queue's held or pending jobs, by its prefix.
- `ix_jobs_queue_created_at_id`: lists of a queue, newest or oldest first.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_CLAIM_INDEX = "ix_jobs_queue_status_priority_desc_created_at_id"
QUEUE_LIST_INDEX = "ix_jobs_queue_created_at_id"


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("queue", sa.String(64), nullable=False, server_default="default")
    )
    op.add_column("jobs", sa.Column("schedule", sa.String(64), nullable=True))
    op.create_table(
        "queues",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_queues"),
    )
    op.create_index(
        QUEUE_CLAIM_INDEX,
        "jobs",
        ["queue", "status", sa.text("priority DESC"), "created_at", "id"],
    )
    op.create_index(QUEUE_LIST_INDEX, "jobs", ["queue", "created_at", "id"])


def downgrade() -> None:
    op.drop_index(QUEUE_LIST_INDEX, table_name="jobs")
    op.drop_index(QUEUE_CLAIM_INDEX, table_name="jobs")
    op.drop_table("queues")
    # Native ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0002's downgrade.
    op.drop_column("jobs", "schedule")
    op.drop_column("jobs", "queue")
