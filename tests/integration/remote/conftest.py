"""One engine on SQLite in this process and one real `chute serve` on SQLite, started
once for the package: the contract suite runs every test on both, as `engine`."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from uuid import uuid4

import pytest
from chute.adapters.remote import RemoteEngine
from chute.application import OrchestrationEngine
from chute.entrypoints.bootstrap import build_container, engine_of, settled
from chute.entrypoints.settings import Settings

from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

KEY = "chute_remote-contract-test-key-0123456789abcdef"
MAX_FILE = 6 * 1024 * 1024  # the upload limit of both engines

Engine = OrchestrationEngine | RemoteEngine


@pytest.fixture(scope="package")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChuteServer]:
    root = tmp_path_factory.mktemp("remote-server")
    env = chute_env(
        sqlite_url(root / "chute.db"),
        root / "storage",
        api_keys=KEY,
        max_upload_bytes=str(MAX_FILE),
        stream_keepalive_seconds="1",
    )
    async with ChuteServer(env, root / "server.log") as process:
        yield process


@pytest.fixture(scope="package")
async def local(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> AsyncIterator[OrchestrationEngine]:
    root = tmp_path_factory.mktemp("remote-local")
    shutil.copy(sqlite_template, root / "chute.db")
    settings = Settings(
        database_url=sqlite_url(root / "chute.db"),
        storage_dir=str(root / "storage"),
        max_upload_bytes=MAX_FILE,
    )
    container = build_container(settings)
    try:
        yield await engine_of(container)
    finally:
        await settled(container.shutdown_resources())


@pytest.fixture
async def remote(server: ChuteServer) -> AsyncIterator[RemoteEngine]:
    async with RemoteEngine(server.base_url, KEY, timeout=10) as engine:
        yield engine


@pytest.fixture(params=["local", "remote"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """The engine in this process, or the same use cases on `chute serve`."""
    found: Engine = request.getfixturevalue(str(request.param))
    return found


@pytest.fixture
def queue() -> str:
    """A queue of the test's own: the engines are shared by every test of the package."""
    return f"q-{uuid4().hex[:12]}"
