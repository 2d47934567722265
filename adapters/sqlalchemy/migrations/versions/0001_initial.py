"""Jobs, their detection results, and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written by hand, with plain SQLAlchemy types that give the same DDL as the types of
`tables.py`, so that this revision never changes when the application code does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every jobs index ends with the keyset columns (created_at, id).
JOB_INDEXES = {
    "ix_jobs_created_at_id": ["created_at", "id"],
    "ix_jobs_status_created_at_id": ["status", "created_at", "id"],
    "ix_jobs_source_type_created_at_id": ["source_type", "created_at", "id"],
    "ix_jobs_mime_type_created_at_id": ["mime_type", "created_at", "id"],
    "ix_jobs_priority_created_at_id": ["priority", "created_at", "id"],
    "ix_jobs_status_priority_created_at_id": ["status", "priority", "created_at", "id"],
}


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source_type", sa.String(16), nullable=False),
        sa.Column("source_uri", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("mime_type", sa.String(255), nullable=True),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("metadata", _json(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(255), nullable=True),
        sa.Column("lease_seconds", sa.Integer(), nullable=True),
        sa.Column("lease_expires_at", _time(), nullable=True),
        sa.Column("run_after", _time(), nullable=True),
        sa.Column("started_at", _time(), nullable=True),
        sa.Column("finished_at", _time(), nullable=True),
        sa.Column("progress", sa.SmallInteger(), nullable=True),
        sa.Column("progress_message", sa.Text(), nullable=True),
        sa.Column("result", _json(), nullable=True),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    for name, columns in JOB_INDEXES.items():
        op.create_index(name, "jobs", columns)
    op.create_table(
        "detection_results",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("mime_type", sa.String(255), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("group_name", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("detector", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["jobs.id"],
            name="fk_detection_results_job_id_jobs",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", name="pk_detection_results"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("job_ids", _json(), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("detection_results")
    for name in reversed(JOB_INDEXES):
        op.drop_index(name, table_name="jobs")
    op.drop_table("jobs")
