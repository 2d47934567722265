"""`chute serve` on SQLite killed with SIGKILL: under a load of creates, every job that
was acknowledged survives and the file stays sound; in the middle of an upload, no job
and (after the orphan sweep) no partial file is left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.storage.ownership import MARKER

from tests.factories import make_engine, sqlite_url
from tests.faults import (
    MULTIPART_TYPE,
    ChuteServer,
    Tally,
    chute_env,
    fetch_all,
    integrity_check,
    keep_creating,
    leftovers,
    slow_file_body,
    sqlite_job_ids,
)

pytestmark = pytest.mark.slow

CLIENTS = 8
LOAD_SECONDS = 1.5
MIB = 1024 * 1024


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "var" / "chute.db"


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
async def server(tmp_path: Path, database: Path, storage: Path) -> AsyncIterator[ChuteServer]:
    env = chute_env(sqlite_url(database), storage, log_level="WARNING")
    server = ChuteServer(env, tmp_path / "server.log")
    try:
        yield server
    finally:
        server.stop()


async def test_sigkill_under_load_keeps_every_acknowledged_job(
    server: ChuteServer, database: Path
) -> None:
    await server.start()
    tally, stop = Tally(), asyncio.Event()
    clients = [
        asyncio.create_task(keep_creating(server.base_url, tally, stop, client_id=i))
        for i in range(CLIENTS)
    ]
    await asyncio.sleep(LOAD_SECONDS)
    server.kill()  # while every client has a request in flight
    await asyncio.wait_for(asyncio.gather(*clients), 30)
    stop.set()
    assert integrity_check(database) == "ok"

    await server.start()
    answers = await fetch_all(server.base_url, tally.acknowledged)
    stored = sqlite_job_ids(database)
    print(
        f"\nSIGKILL under load: {tally.summary()}; found after restart={answers[200]} "
        f"(GET answers {dict(answers)}); rows in the file={len(stored)}"
    )
    assert tally.acknowledged, "no job was acknowledged before the kill"
    assert set(tally.statuses) == {201}, tally.bodies
    assert answers == {200: len(tally.acknowledged)}
    assert {UUID(job_id) for job_id in tally.acknowledged} <= stored
    # Requests cut off by the kill may or may not have committed; nothing else exists.
    assert len(stored) - len(tally.acknowledged) <= CLIENTS
    server.stop()
    assert integrity_check(database) == "ok"


async def test_sigkill_during_an_upload_leaves_no_job_and_the_sweep_no_file(
    server: ChuteServer, database: Path, storage: Path
) -> None:
    await server.start()
    size, sent = 50 * MIB, [0]
    body = slow_file_body("big.bin", size, chunk=MIB, pause=0.02, sent=sent)
    headers = {"Content-Type": MULTIPART_TYPE}

    async def upload() -> None:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            await client.post("/api/v1/upload", content=body, headers=headers)

    uploading = asyncio.create_task(upload())
    partial = await _partial_file(storage, at_least=size // 2, timeout=30)
    server.kill()
    with pytest.raises(httpx.TransportError):
        await asyncio.wait_for(uploading, 30)
    written = partial.stat().st_size
    folder = partial.parent.name
    assert partial.name.startswith(".part-") and sent[0] < size

    await server.start()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        listed = (await client.get("/api/v1/jobs")).json()
        # The folder is named by the id its job would have had.
        assert (await client.get(f"/api/v1/jobs/{folder}")).status_code == 404
    assert listed["total"] == 0
    before = leftovers(storage)
    removed = await _sweep(database, storage)
    print(
        f"\nSIGKILL during an upload: {sent[0] / MIB:.0f} of {size / MIB:.0f} MiB sent, "
        f"{written / MIB:.0f} MiB on disk as {folder}/{partial.name}; jobs after restart="
        f"{listed['total']}; the sweep removed {removed} folder(s), left {leftovers(storage)}"
    )
    # The ownership marker chute serve claimed the folder with stays; it is no folder.
    assert sorted(before) == sorted([MARKER, folder, f"{folder}/{partial.name}"])
    assert removed == 1
    assert leftovers(storage) == [MARKER]
    server.stop()
    assert integrity_check(database) == "ok"


async def _partial_file(storage: Path, at_least: int, timeout: float) -> Path:
    """The temporary file of the upload being written, once it holds `at_least` bytes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = _partial_file_now(storage, at_least)
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no partial file of {at_least} bytes in {storage} in {timeout}s")


def _partial_file_now(storage: Path, at_least: int) -> Path | None:
    for path in storage.glob("*/.part-*"):
        try:
            if path.stat().st_size >= at_least:
                return path
        except FileNotFoundError:
            pass
    return None


async def _sweep(database: Path, storage: Path) -> int:
    """The application's orphan sweep, with no grace, on the server's database and folder."""
    db = SqlDatabase(create_engine_for(sqlite_url(database)))
    engine = make_engine(uow=db, files=LocalFileStore(storage))
    try:
        return await engine.sweep_orphans(grace=timedelta(0))
    finally:
        await db.dispose()
