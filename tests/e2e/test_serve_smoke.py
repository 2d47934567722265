"""`chute serve` as a real process over loopback: a fresh SQLite file, real disk, real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import corpus

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(base_url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"chute serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"chute serve did not answer /healthz within {timeout}s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """`chute serve` on a free port, on a database file that does not exist yet."""
    port, storage = free_port(), tmp_path / "storage"
    env = os.environ | {
        "CHUTE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/var/chute.db",
        "CHUTE_STORAGE_DIR": str(storage),
        "CHUTE_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "chute.entrypoints", "serve", "--port", str(port)]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(base_url, process, timeout=60)
        yield base_url, storage, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


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
