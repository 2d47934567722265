"""An index of the held jobs, in place of the rescue's index on every job's status.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Written by hand, like the others. A claim of a limited queue counts the queue's held
(running or cancelling) jobs, twice on PostgreSQL (as it reads the limits, and in
`chute_take_room`). Before the statistics knew the statuses (a new or a fast-changing
table), PostgreSQL counted them by the queue's list index, reading every job of the
queue: 1 ms a count at 3,000 jobs, a quarter of the workers' rate. `ix_jobs_held` has
a row only while a job is held, so a count reads the held jobs and nothing else, and
the rescue of expired leases reads the same small index. It replaces
`ix_jobs_status_lease_expires_at` (0002), which had a row for every version of every
job: one index less to write at each creation, claim and end.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("status IN ('cancelling', 'running')")


def upgrade() -> None:
    op.create_index(
        "ix_jobs_held",
        "jobs",
        ["queue", "lease_expires_at"],
        postgresql_where=WHERE,
        sqlite_where=WHERE,
    )
    op.drop_index("ix_jobs_status_lease_expires_at", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_status_lease_expires_at", "jobs", ["status", "lease_expires_at"])
    op.drop_index("ix_jobs_held", table_name="jobs")
