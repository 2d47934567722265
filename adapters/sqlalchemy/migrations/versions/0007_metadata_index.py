"""Metadata filters: a GIN index on the metadata of jobs, on PostgreSQL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Written by hand, like the others. `metadata` is jsonb on PostgreSQL already (JSON text
on SQLite, which has no index that could serve a filter on it), so the revision only
adds `ix_jobs_metadata` there: GIN with `jsonb_path_ops`, which answers the containment
(`@>`) that a metadata filter is written as, so that a filtered page reads the index
instead of every job. Like the other revisions, it builds the index inside the
migration's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

METADATA_INDEX = "ix_jobs_metadata"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        METADATA_INDEX,
        "jobs",
        ["metadata"],
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(METADATA_INDEX, table_name="jobs")
