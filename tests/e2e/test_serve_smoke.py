"""`chute serve` as a real process over loopback: a fresh SQLite file, real disk, real server."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests import corpus
from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

pytestmark = pytest.mark.slow


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`chute serve` on a free port, on a database file that does not exist yet."""
    storage = tmp_path / "storage"
    chute = ChuteServer(
        chute_env(sqlite_url(tmp_path / "var" / "chute.db"), storage), tmp_path / "server.log"
    )
    await chute.start()
    assert chute.process is not None
    try:
        yield chute.base_url, storage, chute.process
    finally:
        if chute.process.poll() is None:
            chute.process.kill()
            chute.process.wait()


def test_serve_answers_over_loopback_and_stops_on_sigterm(
    server: tuple[str, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base_url, storage, process = server
    with httpx.Client(base_url=base_url, timeout=30) as client:
        created = client.post(
            "/api/v1/jobs",
            json={"source_type": "url", "source_uri": "https://example.org/a.pdf"},
            headers={"X-Request-ID": "smoke-1"},
        )
        assert created.status_code == 201, created.text
        assert created.headers["x-request-id"] == "smoke-1"
        job_id = created.json()["id"]

        assert client.get(f"/api/v1/jobs/{job_id}").json()["id"] == job_id
        assert client.get("/api/v1/jobs").json()["total"] == 1
        assert client.get("/readyz").json() == {"status": "ready"}

        files = {"file": ("report.pdf", corpus.pdf(), "application/pdf")}
        uploaded = client.post("/api/v1/upload", files=files, data={"priority": "high"})
        assert uploaded.status_code == 201, uploaded.text
        [upload] = uploaded.json()["jobs"]
        assert upload["mime_type"] == "application/pdf"
        assert (storage / upload["id"] / "report.pdf").read_bytes() == corpus.pdf()

        cancelled = client.delete(f"/api/v1/jobs/{upload['id']}")
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")

    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully; chute serve then returns 0.
    assert process.wait(timeout=30) == 0
    assert (tmp_path / "var" / "chute.db").exists()
    lines = [json.loads(line) for line in (tmp_path / "server.log").read_text().splitlines()]
    assert any(line["event"] == "Application shutdown complete." for line in lines)
    assert any(
        line.get("event") == "job.created" and line.get("request_id") == "smoke-1" for line in lines
    )
