"""A client generated from chute's own description, with no warning, drives a real server.

`openapi-python-client` reads `/openapi.json` from `chute serve` on a free loopback port
and writes a client package into a temporary folder; the test imports it from there and
goes through a short session: create a job, read it, list, upload a file, download its
content, cancel, retry. What the generator would drop or mistype (a response it cannot
read, a time typed as text, a key asked of an open API) fails here.
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import UUID

import pytest

from tests import corpus
from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

pytestmark = pytest.mark.slow

PACKAGE = "chute_client"


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    """`chute serve` on a free port, on a fresh SQLite file and storage folder."""
    env = chute_env(sqlite_url(tmp_path / "chute.db"), tmp_path / "storage", log_level="WARNING")
    env.pop("CHUTE_API_KEYS", None)
    async with ChuteServer(env, tmp_path / "server.log") as server:
        yield server.base_url


def generate(base_url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the generator on the served description, as the README shows."""
    # The generator formats its output with ruff, found on PATH: this environment's.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    command = [
        *(sys.executable, "-m", "openapi_python_client", "generate"),
        *("--url", f"{base_url}/openapi.json", "--meta", "none", "--fail-on-warning"),
        *("--output-path", str(folder / PACKAGE)),
    ]
    return subprocess.run(
        command,
        cwd=folder,
        env=os.environ | {"PATH": path},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def client_package(base_url: str, tmp_path: Path) -> Iterator[ModuleType]:
    """The generated package, imported from its temporary folder (and forgotten after)."""
    folder = tmp_path / "generated"
    folder.mkdir()
    done = generate(base_url, folder)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def api(name: str) -> Any:
    """A module of the generated client: `jobs.create_job`, `models`..."""
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_drives_a_session_against_chute_serve(
    client_package: ModuleType, base_url: str
) -> None:
    m = api("models")
    create_job, get_job, list_jobs = (
        api(f"api.jobs.{n}") for n in ("create_job", "get_job", "list_jobs")
    )
    cancel_job, retry_job = api("api.jobs.cancel_job"), api("api.jobs.retry_job")
    upload_files, get_job_content = (
        api("api.upload.upload_files"),
        api("api.workers.get_job_content"),
    )
    File = api("types").File
    # A plain client: the API runs without keys, and the description says a key is optional.
    client = client_package.Client(base_url=base_url, raise_on_unexpected_status=True)

    request = m.JobCreateRequest(
        source_type=m.ReferenceSourceType.URL,
        source_uri="https://example.org/report.pdf",
        priority=m.Priority.HIGH,
        metadata=m.JobCreateRequestMetadata.from_dict({"tenant": "acme"}),
    )
    created = create_job.sync_detailed(client=client, body=request, idempotency_key="s-1")
    job = created.parsed
    print(f"created {job.id}: {created.status_code} {job.status.value} {job.created_at!r}")
    assert created.status_code == 201
    assert isinstance(job, m.JobResponse) and job.status is m.JobStatus.PENDING
    assert isinstance(job.created_at, datetime) and job.created_at.tzinfo == UTC
    assert job.metadata.to_dict() == {"tenant": "acme"}

    fetched = get_job.sync(job.id, client=client)
    print(f"fetched {fetched.id}: {fetched.priority.value}, max_attempts={fetched.max_attempts}")
    assert (fetched.id, fetched.priority) == (job.id, m.Priority.HIGH)

    page = list_jobs.sync(client=client, status=[m.JobStatus.PENDING], limit=10)
    print(f"listed {[str(item.id) for item in page.items]}, total={page.total}")
    assert [item.id for item in page.items] == [job.id] and page.total == 1

    form = m.UploadForm(
        file=[File(payload=io.BytesIO(corpus.pdf()), file_name="report.pdf")],
        mode=m.Mode.FAST,
        metadata=m.UploadFormMetadata.from_dict({"batch": 7}),
    )
    (upload,) = upload_files.sync(client=client, body=form).jobs
    print(f"uploaded {upload.id}: {upload.mime_type} by {upload.detection.detector}")
    assert upload.source_type is m.SourceType.UPLOAD and upload.mode is m.Mode.FAST
    assert upload.mime_type == "application/pdf" and upload.metadata.to_dict() == {"batch": 7}
    assert isinstance(upload.detection.detected_at, datetime)

    content = get_job_content.sync(upload.id, client=client)
    data = content.payload.read()
    print(f"downloaded {len(data)} bytes")
    assert data == corpus.pdf()

    cancelled = cancel_job.sync(upload.id, client=client)
    retried = retry_job.sync(upload.id, client=client)
    print(f"cancelled: {cancelled.status.value}, retried: {retried.status.value}")
    assert cancelled.status is m.JobStatus.CANCELLED
    assert retried.status is m.JobStatus.PENDING

    missing = get_job.sync_detailed(UUID(int=0), client=client)
    print(f"missing: {missing.status_code} {missing.parsed.type_}")
    assert (missing.status_code, missing.parsed.type_) == (404, "job-not-found")
