"""The event feed: the writing transaction of each event, and a wake-up on PostgreSQL.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Written by hand, like the others. Live streams read `job_events` as the truth:

- `job_events.tx`: on PostgreSQL, the id of the transaction that wrote the event
  (`pg_current_xact_id()`, as bigint), filled in by the server for every insert. Event
  ids come from a sequence when the row is written, not when it commits, so a reader
  in id order could pass an id that a slower transaction commits later. A reader in
  (tx, id) order that stops at the oldest transaction still running cannot. Events
  written before this revision get the revision's own transaction id: all committed,
  they come before every later one. On SQLite the column stays NULL (one writer at a
  time commits in id order).
- `ix_job_events_tx_id` (PostgreSQL): that order.
- A statement trigger that NOTIFYs `chute_events` after events are inserted: delivered
  when the transaction commits, it wakes the streams of every server at once instead
  of at their next poll.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TX_INDEX = "ix_job_events_tx_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.add_column("job_events", sa.Column("tx", sa.BigInteger(), nullable=True))
        return
    op.add_column(
        "job_events",
        sa.Column(
            "tx",
            sa.BigInteger(),
            nullable=True,
            server_default=sa.text("(pg_current_xact_id()::text)::bigint"),
        ),
    )
    op.create_index(TX_INDEX, "job_events", ["tx", "id"])
    op.execute(
        """
        CREATE FUNCTION chute_notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('chute_events', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER chute_events_notify AFTER INSERT ON job_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION chute_notify_events()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER chute_events_notify ON job_events")
        op.execute("DROP FUNCTION chute_notify_events()")
        op.drop_index(TX_INDEX, table_name="job_events")
    op.drop_column("job_events", "tx")
