"""What a worker's turn costs the database (SQLite and PostgreSQL): the completions of
the jobs that finished together and the claim of the next ones for their slots are one
transaction, with one write of the jobs and one of their events."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chute.adapters.sqlalchemy import SqlDatabase
from chute.application import OrchestrationEngine
from chute.domain import Job, JobStatus
from sqlalchemy import event

from tests.factories import make_engine, make_new_job


def statements(database: SqlDatabase) -> Counter[str]:
    """The statements the database runs from now on, by their first words; BEGIN and
    COMMIT as SQLAlchemy starts and ends transactions."""
    seen: Counter[str] = Counter()
    sync = database.engine.sync_engine

    def executed(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen[" ".join(sql.split()[:3])] += 1

    event.listen(sync, "before_cursor_execute", executed)
    event.listen(sync, "begin", lambda _conn: seen.update(["BEGIN"]))
    event.listen(sync, "commit", lambda _conn: seen.update(["COMMIT"]))
    return seen


async def test_completions_and_the_next_claim_are_one_transaction(
    sql_database: SqlDatabase,
) -> None:
    engine: OrchestrationEngine = make_engine(uow=sql_database)
    await engine.create_jobs([make_new_job() for _ in range(8)])
    held = await engine.claim_jobs("w1", limit=4)
    seen = statements(sql_database)

    outcomes, claimed = await engine.complete_and_claim(
        "w1", [(job.id, None) for job in held], limit=4
    )

    assert [job.status for job in outcomes if isinstance(job, Job)] == [JobStatus.COMPLETED] * 4
    assert len(claimed) == 4
    assert (seen["BEGIN"], seen["COMMIT"]) == (1, 1)
    assert seen["UPDATE jobs SET"] == 1  # the completed and the claimed jobs, together
    assert seen["INSERT INTO job_events"] == 1
