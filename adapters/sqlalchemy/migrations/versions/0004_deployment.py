"""Deployment: the id this database keeps for life, which its storage's marker names.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

Written by hand, like the revisions before it, so that it never changes when the
application code does.

One storage belongs to one database: the storage holds a marker naming the database's
id, and a process whose database and storage disagree refuses to start. The id is made
here, once, as a random UUID in a one-row table; nothing else ever writes that table.
A downgrade drops it, and an upgrade after that makes a new id, which no storage names:
its storage must then be given back to it on purpose (by deleting the marker).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    deployment = op.create_table(
        "deployment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deployment"),
    )
    op.bulk_insert(deployment, [{"id": uuid.uuid4()}])


def downgrade() -> None:
    op.drop_table("deployment")
