"""Limit parts: a queue's concurrency limit divided into parts that claims lock alone.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

Written by hand, like the others. Until now a claim of a limited queue locked the
queue's settings row and counted its held jobs, so that claims of that queue ran one
after another, each holding the lock through its commit. Now the limit is divided into
at most 8 parts (`queue_parts`) whose capacities add up to it; a claim locks one part
with room and counts only the held jobs of that part (`jobs.limit_part`).

Every queue that has a limit now gets its parts, and its held jobs are dealt to them
in id order, up to each part's capacity; those beyond the limit get part -1 (their
queue takes no claim until they end), as a lowered limit does.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_PARTS = 8


def upgrade() -> None:
    op.add_column("jobs", sa.Column("limit_part", sa.SmallInteger(), nullable=True))
    parts = op.create_table(
        "queue_parts",
        sa.Column("queue", sa.String(64), nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("queue", "part", name="pk_queue_parts"),
    )
    bind = op.get_bind()
    limited = bind.execute(
        sa.text("SELECT name, concurrency_limit FROM queues WHERE concurrency_limit IS NOT NULL")
    ).all()
    for name, limit in limited:
        count = min(limit, MAX_PARTS)
        capacities = [limit // count + (1 if n < limit % count else 0) for n in range(count)]
        op.bulk_insert(
            parts, [{"queue": name, "part": n, "capacity": c} for n, c in enumerate(capacities)]
        )
        held = (
            bind.execute(
                sa.text(
                    "SELECT id FROM jobs WHERE queue = :q "
                    "AND status IN ('cancelling', 'running') ORDER BY id"
                ),
                {"q": name},
            )
            .scalars()
            .all()
        )
        start = 0
        for part, cap in [*enumerate(capacities), (-1, len(held))]:
            for job_id in held[start : start + cap]:
                bind.execute(
                    sa.text("UPDATE jobs SET limit_part = :p WHERE id = :id"),
                    {"p": part, "id": job_id},
                )
            start += min(cap, max(0, len(held) - start))


def downgrade() -> None:
    op.drop_table("queue_parts")
    # Native ALTER TABLE ... DROP COLUMN (SQLite 3.35 and later), as the others do.
    op.drop_column("jobs", "limit_part")
