"""Workers: the content key of jobs, the job_events history, and the claim/rescue indexes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01

Written by hand, like 0001, with plain SQLAlchemy types that give the same DDL as
`tables.py`, so that this revision never changes when the application code does.

Nothing of 0001 becomes redundant: `ix_jobs_status_priority_created_at_id` still
serves lists filtered by status and sorted by priority (all columns in one direction,
read forwards or backwards), which the claim index (priority DESC, created_at ASC)
cannot serve; the claim index serves only the claim order and its reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPLOAD_PREFIX = "upload://"
CLAIM_INDEX = "ix_jobs_status_priority_desc_created_at_id"
RESCUE_INDEX = "ix_jobs_status_lease_expires_at"
EVENTS_INDEX = "ix_job_events_job_id_id"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("content_key", sa.Text(), nullable=True))
    _backfill_content_keys()
    op.create_table(
        "job_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_job_events_job_id_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_job_events"),
    )
    op.create_index(EVENTS_INDEX, "job_events", ["job_id", "id"])
    op.create_index(CLAIM_INDEX, "jobs", ["status", sa.text("priority DESC"), "created_at", "id"])
    op.create_index(RESCUE_INDEX, "jobs", ["status", "lease_expires_at"])


def _backfill_content_keys() -> None:
    """Upload jobs kept their content at `upload://{key}`: the key is the rest."""
    jobs = sa.table(
        "jobs",
        sa.column("source_type", sa.String()),
        sa.column("source_uri", sa.Text()),
        sa.column("content_key", sa.Text()),
    )
    # substr() counts characters on both databases; the comparison (unlike LIKE on
    # SQLite) is case-sensitive.
    starts = sa.func.substr(jobs.c.source_uri, 1, len(UPLOAD_PREFIX)) == UPLOAD_PREFIX
    op.execute(
        jobs.update()
        .where(jobs.c.source_type == "upload", starts)
        .values(content_key=sa.func.substr(jobs.c.source_uri, len(UPLOAD_PREFIX) + 1))
    )


def downgrade() -> None:
    op.drop_index(RESCUE_INDEX, table_name="jobs")
    op.drop_index(CLAIM_INDEX, table_name="jobs")
    op.drop_index(EVENTS_INDEX, table_name="job_events")
    op.drop_table("job_events")
    # Native ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later): a batch copy of `jobs`
    # would drop the old table, and with foreign keys on that deletes its children.
    op.drop_column("jobs", "content_key")
