"""Sixteen clients creating jobs and two workers claiming and completing them, all at
once, against one `chute serve` on SQLite: SQLite's single writer must never show as
"database is locked" (a 503) or any other 5xx, and every acknowledged job is stored."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.factories import sqlite_url
from tests.faults import (
    ChuteServer,
    Tally,
    chute_env,
    integrity_check,
    keep_creating,
    keep_working,
    sqlite_job_ids,
)

pytestmark = pytest.mark.slow

WRITERS = 16
WORKERS = 2
SECONDS = 3.0


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "var" / "chute.db"


@pytest.fixture
async def server(tmp_path: Path, database: Path) -> AsyncIterator[ChuteServer]:
    env = chute_env(sqlite_url(database), tmp_path / "storage", log_level="WARNING")
    server = ChuteServer(env, tmp_path / "server.log")
    try:
        await server.start()
        yield server
    finally:
        server.stop()


async def test_sixteen_writers_and_two_workers_on_sqlite_never_see_a_locked_database(
    server: ChuteServer, database: Path
) -> None:
    creates, work, stop = Tally(), Tally(), asyncio.Event()
    writers = [
        asyncio.create_task(keep_creating(server.base_url, creates, stop, client_id=i))
        for i in range(WRITERS)
    ]
    workers = [
        asyncio.create_task(keep_working(server.base_url, work, stop, worker_id=f"w{i}"))
        for i in range(WORKERS)
    ]
    await asyncio.sleep(SECONDS)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*writers), 60)
    completed = sum(await asyncio.wait_for(asyncio.gather(*workers), 60))
    server.stop()

    stored = sqlite_job_ids(database)
    print(
        f"\n{WRITERS} writers and {WORKERS} workers for {SECONDS:.0f}s on SQLite: creates "
        f"{creates.summary()}; worker calls {work.summary()}; completed={completed}; "
        f"rows={len(stored)}"
    )
    assert set(creates.statuses) == {201}, creates.bodies
    assert set(work.statuses) == {200}, work.bodies
    assert not creates.errors and not work.errors
    assert {UUID(job_id) for job_id in creates.acknowledged} == stored
    assert completed > 0
    assert _completed_rows(database) == completed
    assert "database is locked" not in server.log_text()
    assert integrity_check(database) == "ok"


def _completed_rows(database: Path) -> int:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        [(count,)] = conn.execute("SELECT count(*) FROM jobs WHERE status = 'completed'")
    return int(count)
