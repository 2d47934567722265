"""The HTTP app end to end: one app per test, driven through httpx's ASGI transport.

Each test gets its own container built from settings that point into `tmp_path`,
with the database overridden (in memory, or a migrated SQLite file for the
`sqlite` variant) and the real detectors, shared by the session because Magika's
model is slow to load.
"""

from __future__ import annotations

import inspect
import io
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import structlog
from chute.adapters.detection import LibmagicDetector, MagikaDetector
from chute.adapters.memory import MemoryDatabase, MemoryFileStore
from chute.adapters.system import ManualClock
from chute.application import FileStore, OrchestrationEngine
from chute.entrypoints.bootstrap import Container, build_container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.settings import Settings
from dependency_injector import providers
from fastapi import FastAPI

from tests.e2e.helpers import CLOCK_START, LogBuffer
from tests.factories import sqlite_url
from tests.faults import RestartablePostgres, restartable_postgres
from tests.fileserver import Running, serve_files
from tests.pg import PostgresUnavailable


@pytest.fixture
def files() -> Iterator[Running]:
    """A file server on 127.0.0.1 for url jobs (`files.url("/files/report.pdf")`)."""
    with serve_files() as running:
        yield running


@pytest.fixture(scope="session")
def libmagic() -> LibmagicDetector:
    return LibmagicDetector()


@pytest.fixture(scope="session")
def magika() -> MagikaDetector:
    return MagikaDetector()


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    """The storage folder of the test's settings (and of `LocalFileStore` when used)."""
    return tmp_path / "storage"


@pytest.fixture
def file_store() -> FileStore:
    """The file store of the app; test modules where the disk matters override this."""
    return MemoryFileStore()


@pytest.fixture(params=["memory"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the app runs on; test modules may ask for ["memory", "sqlite"]."""
    return str(request.param)


@pytest.fixture
def container(
    backend: str,
    tmp_path: Path,
    storage: Path,
    sqlite_template: Path,
    file_store: FileStore,
    libmagic: LibmagicDetector,
    magika: MagikaDetector,
) -> Container:
    database = tmp_path / "chute.db"
    settings = Settings(database_url=sqlite_url(database), storage_dir=str(storage))
    container = build_container(settings)
    if backend == "sqlite":
        shutil.copy(sqlite_template, database)
    else:
        container.database.override(providers.Object(MemoryDatabase()))
    container.file_store.override(providers.Object(file_store))
    container.libmagic.override(providers.Object(libmagic))
    container.magika.override(providers.Object(magika))
    return container


@pytest.fixture
def clock_start() -> datetime:
    """Where the app's manual clock starts; a module may override this fixture."""
    return CLOCK_START


@pytest.fixture
def clock(container: Container, clock_start: datetime) -> ManualClock:
    """A manual clock for the app, standing still until a test moves it. A module whose
    app must run on it from the start says `pytestmark = pytest.mark.usefixtures("clock")`,
    so that the clock is in place before the app builds its engine."""
    clock = ManualClock(clock_start)
    container.clock.override(providers.Object(clock))
    return clock


@pytest.fixture
async def app(container: Container) -> AsyncIterator[FastAPI]:
    # Tests override the container's providers after start-up; the background duties
    # would build the engine at start and miss that. They have tests of their own.
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):  # httpx's transport runs no lifespan
        yield app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def engine(app: FastAPI, container: Container) -> OrchestrationEngine:
    """The app's own engine, to put jobs into states the API cannot (e.g. running)."""
    engine = container.engine()
    if inspect.isawaitable(engine):  # an async resource (the SQL engine) makes it async
        engine = await engine
    assert isinstance(engine, OrchestrationEngine)
    return engine


@pytest.fixture(scope="module")
def postgres() -> Iterator[RestartablePostgres]:
    """A PostgreSQL of the module's own, which its tests stop, freeze and start again."""
    try:
        with restartable_postgres() as server:
            yield server
    except PostgresUnavailable as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """JSON logging at INFO, written to a buffer, for one test; then the previous
    configuration (read the lines with `helpers.log_lines`)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "INFO")
    buffer = LogBuffer()
    ours = root.handlers[0]
    assert isinstance(ours, logging.StreamHandler)
    ours.setStream(buffer)
    yield buffer
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()
