"""The database failing after an upload's file is in place: the upload answers 503 and
neither a job nor the file or its folder is left."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from chute.adapters.sqlalchemy import SqlDatabase, SqlUnitOfWork
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore, ServiceUnavailable
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers

from tests import corpus
from tests.e2e.helpers import assert_problem
from tests.faults import BOUNDARY, MULTIPART_TAIL, MULTIPART_TYPE, leftovers, multipart_head

pytestmark = pytest.mark.slow

PRIORITY_HEAD = b'Content-Disposition: form-data; name="priority"\r\n\r\n'


class FlakyDatabase(SqlDatabase):
    """The real database, whose write units of work fail at commit while `armed`: their
    statements ran, then the connection is lost (the commit never happens)."""

    armed = False
    failed = 0

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> SqlUnitOfWork:
        uow = super().__call__(read_only=read_only, deferred=deferred)
        if self.armed and not read_only:
            uow.commit = self._lost  # type: ignore[method-assign]
        return uow

    async def _lost(self) -> None:
        self.failed += 1
        raise ServiceUnavailable("injected: the connection was lost at commit")


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


@pytest.fixture
def container(container: Container) -> Container:
    """The e2e container with its database made flaky (not armed yet)."""
    container.database.override(providers.Singleton(FlakyDatabase, container.sql_engine))
    return container


@pytest.fixture
async def flaky(app: object, container: Container) -> FlakyDatabase:
    database = container.database()
    if not isinstance(database, FlakyDatabase):  # an async resource makes it awaitable
        database = await database
    assert isinstance(database, FlakyDatabase)
    return database


async def test_upload_whose_commit_fails_is_503_and_removes_its_file(
    client: httpx.AsyncClient, flaky: FlakyDatabase, storage: Path
) -> None:
    flaky.armed = True
    try:
        files = {"file": ("report.pdf", corpus.pdf(), "application/pdf")}
        response = await client.post("/api/v1/upload", files=files)
    finally:
        flaky.armed = False
    assert_problem(response, 503, "service-unavailable")
    assert flaky.failed == 1
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0
    assert leftovers(storage) == []


async def test_upload_whose_tables_vanish_midway_is_503_and_removes_its_file(
    client: httpx.AsyncClient, storage: Path, tmp_path: Path
) -> None:
    """`job_events` is dropped once the file is in place: the jobs insert succeeds, the
    events insert fails, and the whole transaction and the file go."""
    seen: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        yield multipart_head("report.pdf", "application/pdf") + corpus.pdf()
        # The next boundary ends the file part: the app puts the file in place before
        # it asks for more of the body, so that it is on disk when we resume.
        yield f"\r\n--{BOUNDARY}\r\n".encode() + PRIORITY_HEAD
        seen.extend(leftovers(storage))
        with closing(sqlite3.connect(tmp_path / "chute.db")) as conn:
            conn.execute("DROP TABLE job_events")
        yield b"high" + MULTIPART_TAIL

    response = await client.post(
        "/api/v1/upload", content=body(), headers={"Content-Type": MULTIPART_TYPE}
    )
    assert_problem(response, 503, "service-unavailable")
    [folder, file] = seen
    assert file == f"{folder}/report.pdf"  # the file was in place, under its final name
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0
    assert leftovers(storage) == []
