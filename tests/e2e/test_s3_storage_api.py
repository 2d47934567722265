"""The HTTP API on S3 storage (a real SeaweedFS): uploads stream into the bucket and out
again through `GET /content`, a refused upload leaves nothing behind (no object, no
unfinished multipart upload), and `/readyz` checks the bucket. (The orphan sweep on S3:
`tests/integration/test_orphan_sweep.py`; `chute purge` on S3: `test_s3_processes.py`.)"""

from __future__ import annotations

import hashlib
import random
from uuid import uuid4

import httpx
import obstore
import pytest
from chute.adapters.s3 import S3Connection
from chute.adapters.storage import S3FileStore
from chute.application import FileStore, UploadLimits
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers

from tests.e2e.helpers import assert_problem
from tests.s3 import S3Server

MIB = 1024 * 1024


@pytest.fixture
def prefix() -> str:
    return f"api-{uuid4()}"


def bucket_store(server: S3Server, prefix: str, **env: str) -> S3FileStore:
    connection = S3Connection.from_env(server.env() | env)
    return S3FileStore(connection.bucket(env.get("BUCKET", server.bucket), prefix))


@pytest.fixture
def file_store(s3_server: S3Server, prefix: str) -> FileStore:
    return bucket_store(s3_server, prefix)


def content(size: int) -> bytes:
    return random.Random(size).randbytes(size)


async def upload(client: httpx.AsyncClient, data: bytes, name: str) -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    return await client.post("/api/v1/upload", files=files, data={"detect": "false"})


async def test_an_upload_streams_into_the_bucket_and_out_again_whole(
    client: httpx.AsyncClient, file_store: S3FileStore, s3_server: S3Server, prefix: str
) -> None:
    data = content(11 * MIB + 3)  # three parts going up, three read windows coming down
    created = await upload(client, data, "big report.bin")
    assert created.status_code == 201, created.text
    [job] = created.json()["jobs"]
    assert job["source_uri"] == f"upload://{job['id']}/big report.bin"
    assert job["file_size"] == len(data)
    whole = S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket)
    found = await obstore.list(whole, prefix=prefix).collect_async()
    assert [meta["path"] for meta in found] == [f"{prefix}/{job['id']}/big report.bin"]

    digest, size = hashlib.sha256(), 0
    async with client.stream("GET", f"/api/v1/jobs/{job['id']}/content") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(data))
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            size += len(chunk)
    assert (size, digest.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())


async def test_content_missing_from_the_bucket_is_content_not_found(
    client: httpx.AsyncClient, file_store: S3FileStore
) -> None:
    created = await upload(client, b"soon gone", "a.txt")
    [job] = created.json()["jobs"]
    await file_store.delete_folder(uuid4())  # another folder: nothing happens
    await file_store.delete(f"{job['id']}/a.txt")
    missing = await client.get(f"/api/v1/jobs/{job['id']}/content")
    assert_problem(missing, 404, "content-not-found")


async def test_an_upload_over_the_limit_leaves_no_object_and_no_unfinished_upload(
    client: httpx.AsyncClient,
    container: Container,
    file_store: S3FileStore,
    s3_server: S3Server,
    prefix: str,
) -> None:
    container.limits.override(providers.Object(UploadLimits(max_file_bytes=7 * MIB)))
    # Past the first 5 MiB part the file is a multipart upload; it is refused at 7 MiB.
    refused = await upload(client, content(9 * MIB), "big.bin")
    assert_problem(refused, 413, "payload-too-large")
    assert file_store.keys() == []
    assert s3_server.unfinished_uploads(f"{prefix}/") == {}
    assert (await client.get("/api/v1/jobs")).json()["total"] == 0


async def test_readyz_writes_and_deletes_in_the_bucket(
    client: httpx.AsyncClient, file_store: S3FileStore
) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert await obstore.list(file_store.client).collect_async() == []


@pytest.mark.parametrize(
    ("env", "log_words"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "wrong-secret-4242"}, "refused chute's credentials"),
        ({"BUCKET": "no-such-bucket"}, "bucket does not exist"),
    ],
    ids=["wrong-credentials", "missing-bucket"],
)
async def test_readyz_is_503_when_the_bucket_cannot_be_used(
    client: httpx.AsyncClient,
    container: Container,
    s3_server: S3Server,
    prefix: str,
    env: dict[str, str],
    log_words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    container.file_store.override(providers.Object(bucket_store(s3_server, prefix, **env)))
    body = assert_problem(await client.get("/readyz"), 503, "service-unavailable")
    assert "wrong-secret-4242" not in str(body)
    # The log says which; the public answer does not.
    assert any(log_words in getattr(record, "error", "") for record in caplog.records)
