"""PostgreSQL: a limited queue's room is taken by one function call, `chute_take_room`.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Written by hand, like the others. A claim of a limited queue's jobs took three round
trips on PostgreSQL: lock a part of the limit (SKIP LOCKED), count the held jobs of that
part, then mark the jobs it claimed with their part. The count has to be a statement of
its own, started after the lock was granted, so that it sees what the part's previous
holder committed; so the three could not be one SQL statement. A PL/pgSQL function runs
them in one call: in a VOLATILE function each statement takes a fresh snapshot, as a
statement sent alone would (READ COMMITTED). The rules are those of 0012, unchanged.

`chute_take_room(queue, ids)`: `ids` are jobs this transaction has locked to claim, in
claim order. It takes room for as many of the first of them as the parts it can lock
have, marks those with their part, and answers how many: 0 when the queue is paused,
has no limit any more, or holds jobs beyond a lowered limit (part -1 or none).
SQLite has no such function and needs none: its writers run one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TAKE_ROOM = """
CREATE OR REPLACE FUNCTION chute_take_room(q text, ids uuid[]) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    wanted integer := coalesce(cardinality(ids), 0);
    taken integer := 0;
    tried smallint[] := '{}';
    parts smallint[] := '{}';
    p smallint;
    cap integer;
    mine integer;
    strays integer;
    stopped boolean;
    n integer;
BEGIN
    WHILE taken < wanted AND cardinality(tried) < 8 LOOP
        -- Any part of the limit that no other claim holds.
        SELECT qp.part, qp.capacity INTO p, cap
          FROM queue_parts qp
         WHERE qp.queue = q AND qp.part <> ALL (tried)
         ORDER BY random()
         LIMIT 1
           FOR UPDATE SKIP LOCKED;
        EXIT WHEN NOT FOUND;
        tried := tried || p;
        -- Read after the part's lock, so that a claim that held it before has
        -- committed, and so has a pause (a change of the limit locks every part).
        SELECT coalesce(sum(CASE WHEN j.limit_part = p THEN 1 ELSE 0 END), 0),
               coalesce(sum(CASE WHEN j.limit_part IS NULL OR j.limit_part < 0
                            THEN 1 ELSE 0 END), 0),
               (SELECT s.paused OR s.concurrency_limit IS NULL FROM queues s WHERE s.name = q)
          INTO mine, strays, stopped
          FROM jobs j
         WHERE j.queue = q AND j.status IN ('cancelling', 'running');
        IF strays > 0 OR stopped IS NULL OR stopped THEN
            RETURN 0;  -- held beyond a lowered limit (wait for them to end), or paused
        END IF;
        n := least(cap - mine, wanted - taken);
        IF n > 0 THEN
            parts := parts || array_fill(p, ARRAY[n]);
            taken := taken + n;
        END IF;
    END LOOP;
    IF taken > 0 THEN
        UPDATE jobs SET limit_part = room.part
          FROM unnest(ids[1:taken], parts) AS room(id, part)
         WHERE jobs.id = room.id;
    END IF;
    RETURN taken;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(TAKE_ROOM)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS chute_take_room(text, uuid[])")
