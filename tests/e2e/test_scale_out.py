"""chute on many machines, played by real processes on one: one PostgreSQL, one S3 store
(SeaweedFS), two `chute serve` on different ports, two `chute worker`.

Nothing that one process must see lives in another's memory: an upload through one
server is served by the other, an object put into the bucket by a plain S3 client
becomes a completed job, a server killed in the middle of an upload leaves nothing
once a sweep has run, and every job of a mixed load completes exactly once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import obstore
import pytest
from chute.adapters.s3 import S3Connection
from chute.adapters.storage.ownership import MARKER

from tests import corpus
from tests.faults import ChuteServer, chute, chute_env
from tests.fileserver import Running
from tests.s3 import S3Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MIXED_JOBS = 200
GRACE_SECONDS = 4  # the sweep's grace: longer than any upload of this test but the killed one


@dataclass
class Deployment:
    servers: tuple[ChuteServer, ChuteServer]
    workers: list[asyncio.subprocess.Process]
    s3: S3Server
    prefix: str
    env: dict[str, str]
    files: Running

    @property
    def bucket(self) -> obstore.store.S3Store:
        """A plain S3 client of the bucket, as any other program would use."""
        return S3Connection.from_env(self.s3.env()).bucket(self.s3.bucket)


@pytest.fixture
async def deployment(
    fresh_postgres_url: str, s3_server: S3Server, files: Running, tmp_path: Path
) -> AsyncIterator[Deployment]:
    prefix = f"scale-{os.getpid()}-{time.monotonic_ns()}"
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = chute_env(
        fresh_postgres_url,
        tmp_path / "unused",
        storage_url=f"s3://{s3_server.bucket}/{prefix}",
        fetch_allow_private="true",  # the url jobs come from a file server on 127.0.0.1
        sweep_interval_seconds="1",
        orphan_grace_seconds=str(GRACE_SECONDS),
        rescue_interval_seconds="1",
        worker_poll_seconds="0.1",
        log_level="WARNING",
    )
    env |= s3_server.env() | {"PYTHONPATH": path}
    env.pop("CHUTE_STORAGE_DIR")
    migrate = await asyncio.create_subprocess_exec(*chute("migrate"), env=env, stderr=PIPE)
    _, errors = await migrate.communicate()
    assert migrate.returncode == 0, errors.decode()
    servers = (ChuteServer(env, tmp_path / "a.log"), ChuteServer(env, tmp_path / "b.log"))
    workers: list[asyncio.subprocess.Process] = []
    try:
        for server in servers:
            await server.start()
        for name in ("w1", "w2"):
            log = tmp_path / f"{name}.log"
            command = chute("worker", "--worker-id", name, "--slots", "4")
            with log.open("wb") as out:
                workers.append(
                    await asyncio.create_subprocess_exec(
                        *command, env=env | {"CHUTE_LOG_LEVEL": "INFO"}, stdout=out, stderr=out
                    )
                )
            # Started: its signal handlers are in place (SIGTERM before then is fatal).
            await until(lambda log=log: started(log), 60, f"worker {name} started")
        yield Deployment(servers, workers, s3_server, prefix, env, files)
    finally:
        try:
            for worker in workers:
                worker.terminate()
            codes = [await asyncio.wait_for(worker.wait(), 30) for worker in workers]
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.kill()
            for server in servers:
                server.stop()
        assert codes == [0] * len(workers), "a worker did not stop cleanly on SIGTERM"


async def started(log: Path) -> bool:
    return "worker.started" in await asyncio.to_thread(log.read_text, errors="replace")


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


async def finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any] | None:
    job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}")).json()
    return job if job["status"] in ("completed", "failed", "cancelled") else None


async def test_an_upload_through_one_server_is_served_by_the_other(
    deployment: Deployment,
) -> None:
    content = os.urandom(7 * 1024 * 1024) + corpus.pdf()  # a multipart upload to S3
    a, b = (httpx.AsyncClient(base_url=s.base_url, timeout=60) for s in deployment.servers)
    async with a, b:
        response = await a.post("/api/v1/upload", files={"file": ("big.bin", content)})
        assert response.status_code == 201, response.text
        [job] = response.json()["jobs"]

        served = await b.get(f"/api/v1/jobs/{job['id']}/content")

    assert served.status_code == 200
    assert hashlib.sha256(served.content).hexdigest() == hashlib.sha256(content).hexdigest()
    assert job["detection"]["sha256"] == hashlib.sha256(content).hexdigest()


async def test_an_object_put_by_a_plain_s3_client_becomes_a_completed_job(
    deployment: Deployment,
) -> None:
    key = f"{deployment.prefix}-inbox/report.pdf"
    await obstore.put_async(deployment.bucket, key, corpus.pdf())
    source = {"source_type": "s3", "source_uri": f"s3://{deployment.s3.bucket}/{key}"}
    async with httpx.AsyncClient(base_url=deployment.servers[1].base_url, timeout=30) as client:
        created = await client.post("/api/v1/jobs", json=source)
        assert created.status_code == 201, created.text
        job = await until(lambda: finished(client, created.json()["id"]), 60, "the s3 job")

    assert job["status"] == "completed", job["last_error"]
    assert job["mime_type"] == "application/pdf" and job["file_size"] == len(corpus.pdf())
    assert job["detection"]["sha256"] == hashlib.sha256(corpus.pdf()).hexdigest()


async def test_a_server_killed_mid_upload_leaves_nothing_once_swept(
    deployment: Deployment,
) -> None:
    killed, survivor = deployment.servers
    sent = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        boundary = b"--kill"
        yield (
            boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n\r\n'
        )
        for _ in range(64):  # far more than it will take: the server dies first
            yield os.urandom(1024 * 1024)
            if await asyncio.to_thread(deployment.s3.unfinished_uploads, f"{deployment.prefix}/"):
                sent.set()  # the upload has parts in the bucket now
            await asyncio.sleep(0.05)

    headers = {"Content-Type": "multipart/form-data; boundary=kill"}
    async with httpx.AsyncClient(base_url=killed.base_url, timeout=60) as client:
        upload = asyncio.create_task(client.post("/api/v1/upload", content=body(), headers=headers))
        await asyncio.wait_for(sent.wait(), 60)
        killed.kill()
        with pytest.raises(httpx.TransportError):
            await upload

    async with httpx.AsyncClient(base_url=survivor.base_url, timeout=30) as client:
        assert (await client.get("/api/v1/jobs")).json()["total"] == 0

        async def nothing_left() -> bool:
            objects = await obstore.list(
                deployment.bucket, prefix=deployment.prefix
            ).collect_async()
            chute_objects = [o for o in objects if not o["path"].endswith(MARKER)]
            uploads = await asyncio.to_thread(
                deployment.s3.unfinished_uploads, f"{deployment.prefix}/"
            )
            return not chute_objects and not uploads

        # The survivor sweeps every second, removing what is older than the grace.
        await until(nothing_left, GRACE_SECONDS + 30, "the killed upload's leftovers swept")


async def test_two_hundred_jobs_of_mixed_sources_complete_exactly_once(
    deployment: Deployment,
) -> None:
    bucket = deployment.s3.bucket
    for n in range(MIXED_JOBS // 4):
        await obstore.put_async(deployment.bucket, f"{deployment.prefix}-mix/{n}.png", corpus.png())
    clients = [httpx.AsyncClient(base_url=s.base_url, timeout=60) for s in deployment.servers]
    ids: list[str] = []
    try:
        for n in range(MIXED_JOBS // 4):
            a, b = clients[n % 2], clients[(n + 1) % 2]
            uploaded = await a.post(
                "/api/v1/upload", files={"file": (f"{n}.json", corpus.json_document())}
            )
            url = deployment.files.url("/files/report.pdf")
            reference = await b.post("/api/v1/jobs", json={"source_type": "url", "source_uri": url})
            s3_key = f"s3://{bucket}/{deployment.prefix}-mix/{n}.png"
            s3_job = await a.post("/api/v1/jobs", json={"source_type": "s3", "source_uri": s3_key})
            plain = await b.post("/api/v1/upload", files={"file": (f"{n}.txt", corpus.text())})
            for response in (uploaded, reference, s3_job, plain):
                assert response.status_code == 201, response.text
                body = response.json()
                ids += [job["id"] for job in body["jobs"]] if "jobs" in body else [body["id"]]
        assert len(ids) == MIXED_JOBS

        async def all_done() -> bool:
            page = await clients[0].get("/api/v1/jobs", params={"status": "completed", "limit": 1})
            return bool(page.json()["total"] == MIXED_JOBS)

        await until(all_done, 240, f"{MIXED_JOBS} jobs completed")
        for n, job_id in enumerate(ids):
            events = (await clients[n % 2].get(f"/api/v1/jobs/{job_id}/events")).json()["items"]
            transitions = [(e["from_status"], e["to_status"]) for e in events]
            assert transitions == [
                (None, "pending"),
                ("pending", "running"),
                ("running", "completed"),
            ], job_id
    finally:
        for client in clients:
            await client.aclose()
