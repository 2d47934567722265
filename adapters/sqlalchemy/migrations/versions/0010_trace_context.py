"""Trace context: the `trace_context` column of `jobs`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Written by hand, like the others. The W3C `traceparent` of the request that created a
job (55 characters), so that the worker's span of the job continues that request's
trace; NULL when nothing was traced, and for every job made before this revision. No
index: it is only ever read with its job.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("trace_context", sa.String(128), nullable=True))


def downgrade() -> None:
    # Native ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as 0002's downgrade.
    op.drop_column("jobs", "trace_context")
