"""Alembic owns the schema: its migrations build exactly `tables.metadata`, and undo it."""

from __future__ import annotations

import re
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, downgrade, upgrade
from chute.adapters.sqlalchemy.migrate import alembic_config
from chute.adapters.sqlalchemy.repositories import _claim
from chute.adapters.sqlalchemy.statements import claimable, expired, filtered, queue_names
from chute.adapters.sqlalchemy.tables import (
    HELD_ROWS,
    UtcDateTime,
    content_folder,
    jobs,
    metadata,
)
from chute.application import ClaimFilter, JobFilter
from chute.domain import Priority
from sqlalchemy import Uuid, bindparam, event, func, inspect, select, text
from sqlalchemy.engine import Connection, make_url

from tests.factories import at
from tests.pg import create_database, drop_database

CHUTE_TABLES = {"jobs", "detection_results", "idempotency_keys", "job_events", "queues"}


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with nothing in it (for SQLite, in a folder not yet made)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'not-yet' / 'chute.db'}"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = await create_database(server)
    yield url
    await drop_database(server, str(make_url(url).database))


# Indexes that tables.py makes on PostgreSQL only (`ddl_if`), which Alembic's comparison
# does not know of.
POSTGRESQL_ONLY = {"ix_jobs_metadata", "ix_job_events_tx_id"}


def differences(conn: Connection) -> list[Any]:
    def included(obj: Any, name: str | None, kind: str, *_: Any) -> bool:
        elsewhere = conn.dialect.name != "postgresql"
        return not (kind == "index" and name in POSTGRESQL_ONLY and elsewhere)

    opts = {"compare_type": True, "include_object": included}
    context = MigrationContext.configure(conn, opts=opts)
    with warnings.catch_warnings():
        # SQLite cannot reflect the expression index ix_jobs_content_folder, so Alembic
        # skips it there; the CREATE INDEX comparison below covers it instead.
        warnings.filterwarnings("ignore", ".*expression-based index ix_jobs_content_folder")
        warnings.filterwarnings("ignore", ".*expression-based index 'ix_jobs_content_folder'")
        return list(compare_metadata(context, metadata))


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def on(url: str, check: Any) -> Any:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(check)
    finally:
        await engine.dispose()


async def test_upgrade_builds_the_schema_of_tables_py_and_downgrade_removes_it(
    empty_url: str,
) -> None:
    await upgrade(empty_url)
    assert await on(empty_url, differences) == []

    await downgrade(empty_url, "base")
    assert not await on(empty_url, table_names) & CHUTE_TABLES

    await upgrade(empty_url)
    assert await on(empty_url, differences) == []
    await upgrade(empty_url)  # at head already: nothing to do


def index_sql(conn: Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    return {name: sql for name, sql in rows if sql is not None}


async def test_on_sqlite_every_index_is_made_as_tables_py_makes_it(tmp_path: Path) -> None:
    """SQLite's reflection has no sort directions, so the comparison above cannot see
    them: compare the CREATE INDEX statements (priority DESC of the claim index)."""
    migrated = f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}"
    created = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'created.db'}")
    await upgrade(migrated)
    try:
        async with created.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await created.dispose()
    expected = await on(str(created.url), index_sql)
    assert await on(migrated, index_sql) == expected
    assert "priority DESC" in expected["ix_jobs_status_priority_desc_created_at_id"]
    assert "substr(content_key, 1, 36)" in expected["ix_jobs_content_folder"]


JOB_COLUMNS = (
    "id, status, source_type, source_uri, priority, mode, metadata, attempts, max_attempts, "
    "created_at, updated_at"
)
OLD_JOBS = {
    "upload": ("upload://0193a4f2/Ünïcødé 報告.pdf", "0193a4f2/Ünïcødé 報告.pdf"),
    "url": ("https://example.org/upload://x", None),
}


def insert_old_jobs(conn: Connection) -> None:
    """Jobs as revision 0001 knew them, written in plain SQL."""
    stmt = text(
        f"INSERT INTO jobs ({JOB_COLUMNS}) "
        "VALUES (:id, 'pending', :source_type, :uri, 1, 'auto', '{}', 0, 3, :t, :t)"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("t", type_=UtcDateTime()))
    for n, (source_type, (uri, _)) in enumerate(OLD_JOBS.items(), start=1):
        conn.execute(stmt, {"id": UUID(int=n), "source_type": source_type, "uri": uri, "t": at(n)})


def content_keys(conn: Connection) -> dict[str, str | None]:
    rows = conn.execute(text("SELECT source_type, content_key FROM jobs"))
    return {source_type: key for source_type, key in rows}


def job_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())


def revisions() -> list[tuple[str, str]]:
    """Every revision with the one below it (`base` under the first), oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    steps = [(r.revision, str(r.down_revision or "base")) for r in script.walk_revisions()]
    return steps[::-1]


async def run_on(url: str, work: Any) -> None:
    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(work)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(("revision", "below"), revisions(), ids=[r for r, _ in revisions()])
async def test_every_revision_goes_up_down_and_up_again_keeping_the_jobs(
    empty_url: str, revision: str, below: str
) -> None:
    """The stairway: each revision, on a database holding jobs written as the first
    revision knew them, upgrades, downgrades to the revision below and upgrades again;
    the jobs survive every step, and the last step leaves the schema of `tables.py`."""
    await upgrade(empty_url, below)
    if below != "base":
        await run_on(empty_url, insert_old_jobs)

    await upgrade(empty_url, revision)
    await downgrade(empty_url, below)
    if below == "base":
        assert not await on(empty_url, table_names) & CHUTE_TABLES
    else:
        assert await on(empty_url, job_count) == len(OLD_JOBS)
    await upgrade(empty_url, revision)
    if below != "base":
        assert await on(empty_url, job_count) == len(OLD_JOBS)

    await upgrade(empty_url)
    assert await on(empty_url, differences) == []


async def test_the_workers_revision_backfills_the_content_keys_of_uploads(
    empty_url: str,
) -> None:
    await upgrade(empty_url, "0001")
    await run_on(empty_url, insert_old_jobs)
    await upgrade(empty_url, "0002")
    assert await on(empty_url, content_keys) == {t: key for t, (_, key) in OLD_JOBS.items()}


def folder_lookup_plan(conn: Connection) -> str:
    """The plan of the sweep's question "which of these folders do jobs use"."""
    folder = content_folder()
    stmt = select(folder).distinct().where(folder.in_([str(uuid4()), str(uuid4())]))
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is no measure
    return " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


async def test_the_folder_lookup_walks_the_content_folder_index(empty_url: str) -> None:
    await upgrade(empty_url)
    engine = create_engine_for(empty_url)
    try:
        async with engine.begin() as conn:
            assert "ix_jobs_content_folder" in await conn.run_sync(folder_lookup_plan)
    finally:
        await engine.dispose()


def plan(conn: Connection, stmt: Any, *, seqscan: bool = False) -> str:
    """The plan of a statement, with its parameters written in (as literals)."""
    sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        return " ".join(row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    if not seqscan:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # an empty table is no measure
    return " ".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))


def queue_plans(conn: Connection) -> dict[str, str]:
    """The plans of what claims and queue views ask of one queue."""
    one = ClaimFilter(queues=frozenset({"q"}))
    return {
        "claim": plan(conn, claimable(one, 5, conn.dialect.name).params(now=at(0))),
        "list": plan(conn, filtered(select(jobs), JobFilter(queues=frozenset({"q"})), "x")
                     .order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(50)),
        "names": plan(conn, queue_names()),
    }  # fmt: skip


async def test_one_queue_is_counted_claimed_and_listed_by_its_indexes(empty_url: str) -> None:
    await upgrade(empty_url)
    engine = create_engine_for(empty_url)
    try:
        async with engine.begin() as conn:
            plans = await conn.run_sync(queue_plans)
    finally:
        await engine.dispose()
    # Each walks an index led by the queue (on an empty table PostgreSQL may take either
    # of the two for a count), and no plan reads the whole table or sorts.
    for what, found in plans.items():
        assert "ix_jobs_queue_" in found, (what, found)
        assert not re.search(r"Seq Scan|SCAN jobs(?! USING)", found), (what, found)
    assert "ix_jobs_queue_status_priority_desc_created_at_id" in plans["claim"], plans
    assert "SORT" not in plans["claim"].upper(), plans  # walked in claim order


def held_plans(conn: Connection) -> dict[str, str]:
    """The plans of the held count of a limited queue's claims (`for_claims`, and
    `chute_room_parts` on PostgreSQL) and of the rescue of expired leases."""
    held = select(func.count()).where(jobs.c.queue == "q", HELD_ROWS)
    return {"held": plan(conn, held, seqscan=True), "rescue": plan(conn, expired(at(0), 100))}


async def test_held_jobs_are_counted_and_rescued_by_the_held_index_alone(empty_url: str) -> None:
    """A queue's 3,000 ended jobs and 16 held ones, before any ANALYZE (a new table, or
    one that changes faster than the statistics): the held count must not read the ended
    jobs. PostgreSQL counted by the queue's list index and read them all, 1 ms a count,
    a quarter of the workers' rate with a limit on."""
    await upgrade(empty_url)
    engine = create_engine_for(empty_url)
    rows = [
        {"id": uuid4(), "queue": "q", "status": "completed" if n >= 16 else "running",
         "source_type": "url", "source_uri": f"https://example.org/{n}",
         "priority": Priority.NORMAL.rank, "mode": "auto", "metadata": {}, "attempts": 1,
         "max_attempts": 3, "created_at": at(n), "updated_at": at(n),
         "lease_expires_at": at(60) if n < 16 else None}
        for n in range(3016)
    ]  # fmt: skip
    try:
        async with engine.begin() as conn:
            await conn.execute(jobs.insert(), rows)
        async with engine.begin() as conn:
            plans = await conn.run_sync(held_plans)
    finally:
        await engine.dispose()
    if "sqlite" in empty_url:  # as good: a seek of the held statuses in a status index
        for what, found in plans.items():
            assert re.search(r"ix_jobs_held|status=\?", found), (what, found)
    else:
        for what, found in plans.items():
            assert "ix_jobs_held" in found, (what, found)
    # Literals, not parameters: a prepared statement's generic plan can still match them
    # to the index's condition (SQLite matches a partial index only so).
    assert not select(jobs.c.id).where(HELD_ROWS).compile().params


async def test_a_claim_of_one_queue_walks_its_index_past_an_older_backlog_elsewhere(
    empty_url: str,
) -> None:
    """With another queue's older backlog in front in claim order, a claim of one queue
    must still seek its own queue's jobs; PostgreSQL, left to its statistics, walked
    the status index and passed over the whole backlog (every claim beside a paused or
    full queue paid it)."""
    await upgrade(empty_url)
    engine = create_engine_for(empty_url)
    rows = [
        {"id": uuid4(), "queue": queue, "status": "pending", "source_type": "url",
         "source_uri": f"https://example.org/{n}", "priority": Priority.NORMAL.rank, "mode": "auto",
         "metadata": {}, "attempts": 0, "max_attempts": 3, "created_at": at(n),
         "updated_at": at(n)}
        for queue, first in (("q", 0), ("other", 3000)) for n in range(first, first + 3000)
    ]  # fmt: skip
    other = ClaimFilter(queues=frozenset({"other"}))
    try:
        async with engine.begin() as conn:
            await conn.execute(jobs.insert(), rows)
            await conn.exec_driver_sql("ANALYZE")
        async with engine.begin() as conn:
            sql = claimable(other, 4, conn.dialect.name).params(now=at(10_000))
            found = await conn.run_sync(lambda c: plan(c, sql, seqscan=True))
    finally:
        await engine.dispose()
    assert "ix_jobs_queue_status_priority_desc_created_at_id" in found, found
    assert "SORT" not in found.upper(), found


async def test_a_claim_walks_the_pending_jobs_in_order_before_any_analyze(
    empty_url: str,
) -> None:
    """A new table of 5,000 jobs, a fifth of them ended, never analyzed: a claim must
    walk the claim index in claim order and stop at its jobs. PostgreSQL, left to its
    statistics, fetched and sorted the whole backlog at each claim (4 ms a claim, two
    thirds of the database's time in the workers' benchmark)."""
    await upgrade(empty_url)
    engine = create_engine_for(empty_url)
    rows = [
        {"id": uuid4(), "queue": "q", "status": "pending",
         "source_type": "url", "source_uri": f"https://example.org/{n}",
         "priority": Priority.NORMAL.rank, "mode": "auto", "metadata": {}, "attempts": 0,
         "max_attempts": 3, "created_at": at(n), "updated_at": at(n)}
        for n in range(5000)
    ]  # fmt: skip
    oldest = [row["id"] for row in rows[1000:1004]]
    postgres = engine.dialect.name == "postgresql"
    settings: list[str] = []  # the claims' planner settings, as sent
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_: settings.append(sql) if "set_config" in sql else None,
    )
    db = SqlDatabase(engine)
    try:
        async with engine.begin() as conn:  # pending, then ended: as claims leave them
            await conn.execute(jobs.insert(), rows)
            ended = jobs.c.created_at < at(1000)
            await conn.execute(jobs.update().where(ended).values(status="completed"))
        async with db() as uow:
            claimed = await uow.jobs.lock_claimable(ClaimFilter(), at(10_000), 4)
            # A second look in the same claim (nothing claimed meanwhile: the same jobs).
            again = await uow.jobs.lock_claimable(ClaimFilter(), at(10_000), 4)
            if postgres:  # the rows this transaction has read so far
                reads = text("SELECT pg_stat_get_xact_tuples_fetched('jobs'::regclass)")
                fetched = (await uow.write(reads)).scalar_one()
                # A statement of the claim's transaction that must sort all the same
                # (a limited queue's part is picked at random) is costed at 10^10 with
                # sorting off: JIT compiled it, 100 ms a call, until JIT was off too.
                random = text("EXPLAIN ANALYZE SELECT * FROM queue_parts ORDER BY random()")
                sorted_anyway = " ".join((await uow.write(random)).scalars())
        if postgres:
            # Past the five runs after which PostgreSQL may reuse a generic plan, which
            # a claim's transaction allows: the claim still walks in order.
            mode = text("SELECT current_setting('plan_cache_mode')")
            for _ in range(8):
                async with db() as uow:
                    before = (await uow.write(reads)).scalar_one()
                    late = await uow.jobs.lock_claimable(ClaimFilter(), at(10_000), 4)
                    fetched_late = (await uow.write(reads)).scalar_one() - before
                    in_claim = (await uow.write(mode)).scalar_one()
            async with db(read_only=True) as uow:
                elsewhere = (await uow.read(mode)).scalar_one()
        if not postgres:  # no such count: its plan, then
            sql = _claim(ClaimFilter(), 4, "sqlite").params(now=at(10_000))
            async with engine.connect() as conn:
                walked = await conn.run_sync(lambda c: plan(c, sql))
    finally:
        await db.dispose()
    assert [job.id for job in claimed] == oldest == [job.id for job in again]
    if postgres:
        assert fetched < 50, fetched
        assert len(settings) == 9, settings  # once a transaction, not once a look
        assert "Sort" in sorted_anyway and "JIT" not in sorted_anyway, sorted_anyway
        assert [job.id for job in late] == oldest and fetched_late < 50, fetched_late
        # Plans reused in the claim's transaction only; lists plan each run.
        assert (in_claim, elsewhere) == ("auto", "force_custom_plan")
    else:
        assert "ix_jobs_status_priority_desc" in walked and "TEMP B-TREE" not in walked, walked


async def test_the_queues_revision_puts_every_job_in_queue_default(empty_url: str) -> None:
    await upgrade(empty_url, "0005")
    await run_on(empty_url, insert_old_jobs)
    await upgrade(empty_url, "0006")

    rows = await on(empty_url, lambda c: c.execute(text("SELECT queue, schedule FROM jobs")).all())
    assert [tuple(row) for row in rows] == [("default", None)] * len(OLD_JOBS)


def insert_events(conn: Connection, job_ids: list[UUID]) -> None:
    stmt = text(
        "INSERT INTO job_events (job_id, at, to_status, actor) VALUES (:job, :t, 'pending', 'x')"
    ).bindparams(bindparam("job", type_=Uuid()), bindparam("t", type_=UtcDateTime()))
    for n, job_id in enumerate(job_ids):
        conn.execute(stmt, {"job": job_id, "t": at(n)})


def event_jobs(conn: Connection) -> list[UUID]:
    rows = conn.execute(text("SELECT job_id FROM job_events ORDER BY id"))
    return [UUID(str(job_id)) for (job_id,) in rows]


async def test_the_events_revision_keeps_events_and_its_downgrade_drops_orphans_only(
    empty_url: str,
) -> None:
    """0018 drops the events' foreign key (SQLite by copying the table): the events stay,
    in order. Going back down, events whose job is gone (deleted by hand meanwhile:
    chute deletes a job's events with it) go, so that the key can come back."""
    await upgrade(empty_url, "0017")
    await run_on(empty_url, insert_old_jobs)
    kept = [UUID(int=1), UUID(int=2), UUID(int=1)]
    await run_on(empty_url, lambda c: insert_events(c, kept))
    await upgrade(empty_url, "0018")
    assert await on(empty_url, event_jobs) == kept

    await run_on(empty_url, lambda c: insert_events(c, [UUID(int=99)]))  # no such job
    await downgrade(empty_url, "0017")
    assert await on(empty_url, event_jobs) == kept


def insert_typed_jobs(conn: Connection) -> None:
    """Jobs stored under names a detector gave before chute kept one name per format."""
    stmt = text(
        f"INSERT INTO jobs ({JOB_COLUMNS}, mime_type) "
        "VALUES (:id, 'pending', 'url', 'https://example.org/x', 1, 'auto', '{}', 0, 3, :t, :t, "
        ":mime)"
    ).bindparams(bindparam("id", type_=Uuid()), bindparam("t", type_=UtcDateTime()))
    for n, mime in enumerate(["application/x-pie-executable", "text/xml", "application/pdf"]):
        conn.execute(stmt, {"id": UUID(int=100 + n), "t": at(n), "mime": mime})


def mime_types(conn: Connection) -> list[str]:
    return [row[0] for row in conn.execute(text("SELECT mime_type FROM jobs ORDER BY id"))]


async def test_the_media_types_revision_stores_every_format_under_one_name(
    empty_url: str,
) -> None:
    await upgrade(empty_url, "0004")
    await run_on(empty_url, insert_typed_jobs)
    await upgrade(empty_url, "0005")
    assert await on(empty_url, mime_types) == [
        "application/x-executable",
        "application/xml",
        "application/pdf",
    ]


def metadata_page_plan(conn: Connection) -> str:
    """The plan of a newest-first page of jobs with two metadata filters, one of which
    (`7`) is also a JSON number."""
    filt = JobFilter(metadata=(("batch", "7"), ("tenant", "acme")))
    page = filtered(select(jobs), filt, conn.dialect.name)
    return plan(conn, page.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(50))


async def test_on_postgresql_a_metadata_filtered_page_reads_the_metadata_index(
    postgres_server_url: str,
) -> None:
    url = await create_database(postgres_server_url)
    try:
        await upgrade(url)
        found = await on(url, metadata_page_plan)
    finally:
        await drop_database(postgres_server_url, str(make_url(url).database))
    assert "Bitmap Index Scan on ix_jobs_metadata" in found, found
    assert "Seq Scan" not in found, found
