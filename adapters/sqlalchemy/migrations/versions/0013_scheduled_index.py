"""An index of the pending jobs that have a `run_after`: the queues' scheduled counts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Written by hand, like the others. A queue's view (the API's `/queues`, the console's
overview) splits its pending jobs into ready and scheduled ones. It read every pending
and held job's row for that, hundreds of milliseconds at a million jobs; now the counts
come from the queue index alone, and the scheduled ones from this small partial index
(only pending jobs with a `run_after` are in it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("status = 'pending' AND run_after IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_scheduled",
        "jobs",
        ["queue", "run_after"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_scheduled", table_name="jobs")
