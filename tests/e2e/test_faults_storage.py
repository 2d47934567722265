"""The storage folder full (a 2 MiB tmpfs) or not writable (a read-only mount, a file in
its place): uploads are refused as 507 / 503 problems, leave no job and no partial file,
and /readyz says not ready until the folder takes writes again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore

from tests import corpus
from tests.e2e.helpers import assert_problem
from tests.faults import MountRefused, fill, leftovers, tmpfs

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
NOT_A_FOLDER = b"a regular file where the storage folder should be\n"


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """The storage folder as the test asks: `small` (a 2 MiB tmpfs, the default),
    `read-only` (a read-only tmpfs) or `a-file` (a regular file at its path)."""
    kind = getattr(request, "param", "small")
    folder = tmp_path / "storage"
    if kind == "a-file":
        folder.write_bytes(NOT_A_FOLDER)
        yield folder
        return
    try:
        with tmpfs(folder, "2m", read_only=kind == "read-only"):
            yield folder
    except MountRefused as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


async def upload(client: httpx.AsyncClient, data: bytes, name: str = "big.bin") -> httpx.Response:
    return await client.post("/api/v1/upload", files={"file": (name, data, "application/pdf")})


async def job_count(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/v1/jobs")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


async def test_upload_larger_than_the_free_space_is_507_and_leaves_nothing(
    client: httpx.AsyncClient, storage: Path
) -> None:
    started = time.monotonic()
    response = await upload(client, os.urandom(3 * MIB))
    seconds = time.monotonic() - started
    assert_problem(response, 507, "insufficient-storage")
    print(f"\nfull storage: a 3 MiB upload into a 2 MiB tmpfs: 507 in {seconds:.2f}s")
    assert await job_count(client) == 0
    assert leftovers(storage) == []
    # The space it took is free again: a smaller file fits.
    assert (await upload(client, corpus.pdf(), "report.pdf")).status_code == 201


async def test_full_storage_refuses_uploads_and_readiness_until_space_is_freed(
    client: httpx.AsyncClient, storage: Path
) -> None:
    filled = fill(storage)
    assert_problem(await upload(client, corpus.pdf(), "report.pdf"), 507, "insufficient-storage")
    assert_problem(await client.get("/readyz"), 503, "service-unavailable")
    assert await job_count(client) == 0
    assert leftovers(storage) == ["filler.bin"]

    (storage / "filler.bin").unlink()
    assert (await client.get("/readyz")).status_code == 200
    created = await upload(client, corpus.pdf(), "report.pdf")
    assert created.status_code == 201, created.text
    print(f"\nstorage filled with {filled / MIB:.2f} MiB: 507 and not ready; freed: 201, ready")


@pytest.mark.parametrize("storage", ["read-only", "a-file"], indirect=True)
async def test_storage_that_takes_no_writes_gives_503_and_not_ready(
    client: httpx.AsyncClient, storage: Path
) -> None:
    assert_problem(await upload(client, corpus.pdf(), "report.pdf"), 503, "service-unavailable")
    assert_problem(await client.get("/readyz"), 503, "service-unavailable")
    assert await job_count(client) == 0
    assert left_as_it_was(storage)


def left_as_it_was(storage: Path) -> bool:
    """The folder still empty, or the file in its place unchanged."""
    if storage.is_dir():
        return leftovers(storage) == []
    return storage.read_bytes() == NOT_A_FOLDER
