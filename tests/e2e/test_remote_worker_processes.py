"""`chute worker --server URL` as a real process beside a real `chute serve` on PostgreSQL:
the worker's environment has no database, storage or rescue settings, and its working
folder stays empty (the embedded default would make `./var/chute.db` there).

It completes url (from a file server on 127.0.0.1), upload and s3 (SeaweedFS) jobs with
the built-in processor over HTTP; one killed mid-job loses nothing (the server rescues
the job, a second remote worker completes it, never both at once); a wrong key stops it
at start with one line.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import obstore
import pytest
from chute.adapters.s3 import S3Connection
from chute.adapters.sqlalchemy import upgrade

from tests import corpus
from tests.faults import ChuteServer, WorkerProcess, chute, chute_env
from tests.fileserver import Running
from tests.s3 import S3Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "remote-worker-test-key"


@dataclass
class Deployment:
    server: ChuteServer
    worker_env: dict[str, str]
    tmp_path: Path

    def client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {KEY}"}
        return httpx.AsyncClient(base_url=self.server.base_url, headers=headers, timeout=60)


@pytest.fixture
async def deployment(
    fresh_postgres_url: str, s3_server: S3Server, tmp_path: Path
) -> AsyncIterator[Deployment]:
    env = chute_env(
        fresh_postgres_url,
        tmp_path / "storage",
        api_keys=KEY,
        rescue_interval_seconds="0.5",
        log_level="WARNING",
    )
    await upgrade(fresh_postgres_url)
    async with ChuteServer(env | s3_server.env(), tmp_path / "serve.log") as server:
        yield Deployment(server, _worker_env(s3_server), tmp_path)


def _worker_env(s3_server: S3Server) -> dict[str, str]:
    """A remote worker's environment: none of the server's CHUTE_* settings, the key in
    CHUTE_API_KEY, the AWS_* settings its s3 reader needs."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CHUTE_", "AWS_"))}
    return (
        clean
        | s3_server.env()
        | {
            "CHUTE_API_KEY": KEY,
            "CHUTE_FETCH_ALLOW_PRIVATE": "true",  # the url jobs come from 127.0.0.1
            "CHUTE_WORKER_POLL_SECONDS": "0.1",
            "CHUTE_LOG_FORMAT": "json",
            "PYTHONPATH": path,
        }
    )


def remote_worker(deployment: Deployment, name: str, *options: str) -> WorkerProcess:
    """`chute worker --server` named `name`, run in a folder of its own, `tmp_path/name`."""
    folder = deployment.tmp_path / name
    folder.mkdir()
    return WorkerProcess(
        deployment.worker_env,
        deployment.tmp_path / f"{name}.log",
        *("--server", deployment.server.base_url, "--worker-id", name, *options),
        cwd=folder,
    )


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    try:
        async with asyncio.timeout(timeout):
            while not (found := await check()):
                await asyncio.sleep(0.1)
            return found
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


async def ended(client: httpx.AsyncClient, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    return job if job["status"] in ("completed", "failed", "cancelled") else None


async def completed_by(client: httpx.AsyncClient, job_id: str) -> str | None:
    """The actor of the job's completion: the worker that reported it."""
    events = (await client.get(f"/api/v1/jobs/{job_id}/events")).json()["items"]
    return next((e["actor"] for e in events if e["to_status"] == "completed"), None)


async def test_a_remote_worker_completes_url_upload_and_s3_jobs_with_no_database(
    deployment: Deployment, files: Running, s3_server: S3Server
) -> None:
    key = f"remote-{uuid4().hex[:12]}/scans/image.png"
    bucket = S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket)
    await obstore.put_async(bucket, key, corpus.png())
    async with deployment.client() as client:
        url_job = {"source_type": "url", "source_uri": files.url("/files/report.pdf")}
        s3_job = {"source_type": "s3", "source_uri": f"s3://{s3_server.bucket}/{key}"}
        made = [await client.post("/api/v1/jobs", json=body) for body in (url_job, s3_job)]
        upload = await client.post(
            "/api/v1/upload",
            files={"file": ("notes.txt", corpus.text())},
            data={"mode": "accurate"},  # the worker detects it again, over HTTP
        )
        assert [r.status_code for r in (*made, upload)] == [201] * 3, upload.text
        ids = [r.json()["id"] for r in made] + [upload.json()["jobs"][0]["id"]]

        worker = remote_worker(deployment, "remote-1", "--slots", "3")
        try:
            jobs = [await until(lambda i=i: ended(client, i), 90, f"job {i}") for i in ids]
            assert worker.stop() == 0, worker.log()
        finally:
            worker.kill()
        actors = [await completed_by(client, job_id) for job_id in ids]

    assert [job["status"] for job in jobs] == ["completed"] * 3, [j["last_error"] for j in jobs]
    assert actors == ["remote-1"] * 3
    url, s3, uploaded = jobs
    assert (url["file_name"], url["mime_type"]) == ("report.pdf", "application/pdf")
    assert url["detection"]["sha256"] == hashlib.sha256(corpus.pdf()).hexdigest()
    assert (s3["file_name"], s3["mime_type"], s3["file_size"]) == (
        "image.png",
        "image/png",
        len(corpus.png()),
    )
    assert s3["result"]["sha256"] == hashlib.sha256(corpus.png()).hexdigest()
    assert uploaded["mime_type"].startswith("text/plain")
    assert uploaded["result"]["size"] == len(corpus.text())
    assert (
        list((deployment.tmp_path / "remote-1").iterdir()) == []
    )  # no ./var/chute.db, nothing of its own
    assert '"worker.stopped"' in worker.log() and "Traceback" not in worker.log()


async def test_a_remote_worker_killed_mid_job_loses_it_to_a_second_one_not_shares_it(
    deployment: Deployment,
) -> None:
    slow = ["--processor", "tests.processors:sleepy", "--lease-seconds", "5"]
    async with deployment.client() as client:
        body = {
            "source_type": "url",
            "source_uri": "https://example.org/slow.pdf",
            "metadata": {"first_attempt_seconds": 600},
        }
        created = await client.post("/api/v1/jobs", json=body)
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]

        async def running() -> bool:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).json()
            return bool(job["status"] == "running")

        first = remote_worker(deployment, "remote-a", *slow)
        try:
            await until(running, 60, "the first remote worker took the job")
            first.process.send_signal(signal.SIGKILL)
            assert first.process.wait(10) == -signal.SIGKILL
        finally:
            first.kill()
        second = remote_worker(deployment, "remote-b", *slow)
        try:
            job = await until(lambda: ended(client, job_id), 90, "the job ended")
            assert second.stop() == 0, second.log()
        finally:
            second.kill()
        events = (await client.get(f"/api/v1/jobs/{job_id}/events")).json()["items"]

    assert (job["status"], job["attempts"]) == ("completed", 2), job["last_error"]
    steps = [(e["from_status"], e["to_status"], e["actor"]) for e in events]
    # The server took the job back when remote-a's lease ended, before remote-b claimed it.
    assert steps == [
        (None, "pending", "client"),
        ("pending", "running", "remote-a"),
        ("running", "pending", "rescuer"),
        ("pending", "running", "remote-b"),
        ("running", "completed", "remote-b"),
    ]


async def test_a_wrong_api_key_stops_a_remote_worker_at_start_with_one_line(
    deployment: Deployment,
) -> None:
    command = chute("worker", "--server", deployment.server.base_url, "--api-key", "wrong")
    done = await asyncio.to_thread(
        subprocess.run,
        command,
        env=deployment.worker_env,
        cwd=deployment.tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chute worker: --server "), done.stderr
    assert "Traceback" not in done.stderr + done.stdout
