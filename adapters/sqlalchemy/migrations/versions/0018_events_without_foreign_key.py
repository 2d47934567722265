"""Events name their job without a foreign key.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07

Written by hand, like the others. Every status change writes an event, so every
create, claim and end inserts into `job_events`; its foreign key to `jobs` made
PostgreSQL run a referential check for each row (a look-up of the job and a lock on
its row, through a trigger of its own): about 25 us of PostgreSQL's CPU a job of a
batch of 1,000, half of what the whole insert cost (docs/performance.md). The key
guarded nothing the engine can do: an event is written only in the transaction that
inserted its job or holds its row locked (a claim, a lock for update), so no delete
can come between, and the purge deletes a job's events by name before the job (it
never relied on the cascade, which SQLite applies only with its pragma on). SQLite
checked the key for next to nothing; it loses it too, so that the schema is one.

SQLite cannot drop a constraint: the table is copied into a new one without it (the
ids, and so the order of the events, are kept).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "fk_job_events_job_id_jobs"


def upgrade() -> None:
    with op.batch_alter_table("job_events") as table:
        table.drop_constraint(KEY, type_="foreignkey")


def downgrade() -> None:
    # The key cannot come back over events of jobs deleted by hand meanwhile.
    op.execute("DELETE FROM job_events WHERE job_id NOT IN (SELECT id FROM jobs)")
    with op.batch_alter_table("job_events") as table:
        table.create_foreign_key(KEY, "jobs", ["job_id"], ["id"], ondelete="CASCADE")
