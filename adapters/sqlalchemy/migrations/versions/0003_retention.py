"""Retention: the indexes of the purge of old jobs and keys, and of the orphan sweep.

Revision ID: 0003
Revises: 0002
Create Date: 2026-03-01

Written by hand, like 0001 and 0002, so that this revision never changes when the
application code does. Indexes only: no table or row changes.

- `ix_jobs_status_updated_at`: finished jobs last updated before a time.
- `ix_idempotency_keys_created_at`: keys stored before a time (expired ones).
- `ix_jobs_content_folder`: an index on the expression `substr(content_key, 1, 36)`,
  the storage folder of a content key `{uuid}/{name}`, so that the sweep asks "which of
  these folders does a job use" with one IN list. A plain index on `content_key` would
  serve only a LIKE prefix, and neither database walks one for a list of prefixes
  (PostgreSQL not at all under a non-C collation).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURGE_INDEX = "ix_jobs_status_updated_at"
KEYS_INDEX = "ix_idempotency_keys_created_at"
FOLDER_INDEX = "ix_jobs_content_folder"


def upgrade() -> None:
    op.create_index(PURGE_INDEX, "jobs", ["status", "updated_at"])
    op.create_index(KEYS_INDEX, "idempotency_keys", ["created_at"])
    op.create_index(FOLDER_INDEX, "jobs", [sa.text("substr(content_key, 1, 36)")])


def downgrade() -> None:
    op.drop_index(FOLDER_INDEX, table_name="jobs")
    op.drop_index(KEYS_INDEX, table_name="idempotency_keys")
    op.drop_index(PURGE_INDEX, table_name="jobs")
