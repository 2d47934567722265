"""The S3 connection that storage and ingest share, against a real S3-compatible server."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import obstore
import pytest
from chute.adapters.s3 import S3Connection, split_s3_uri

from tests.s3 import S3Server

ROOT = Path(__file__).resolve().parents[2]


def test_the_standard_aws_variables_describe_the_connection() -> None:
    connection = S3Connection.from_env(
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "a-secret",
            "AWS_ALLOW_HTTP": "true",
        }
    )
    assert connection.endpoint_url == "http://127.0.0.1:9000"
    assert connection.region == "us-east-1" and connection.allow_http
    assert "a-secret" not in repr(connection)


async def test_a_bucket_takes_and_gives_back_objects(s3_server: S3Server) -> None:
    store = S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket, prefix="conn")
    await obstore.put_async(store, "a/b.txt", b"hello")
    got = await obstore.get_async(store, "a/b.txt")
    assert (await got.bytes_async()).to_bytes() == b"hello"
    await obstore.delete_async(store, "a/b.txt")


async def test_wrong_credentials_are_refused(s3_server: S3Server) -> None:
    env = s3_server.env() | {"AWS_SECRET_ACCESS_KEY": "wrong"}
    store = S3Connection.from_env(env).bucket(s3_server.bucket)
    with pytest.raises(obstore.exceptions.PermissionDeniedError):
        await obstore.put_async(store, "x", b"1")


@pytest.mark.parametrize(
    ("uri", "parts"),
    [("s3://b/k", ("b", "k")), ("s3://b/a/b/c.pdf", ("b", "a/b/c.pdf")), ("s3://b", ("b", ""))],
)
def test_an_s3_uri_splits_into_bucket_and_key(uri: str, parts: tuple[str, str]) -> None:
    assert split_s3_uri(uri) == parts


# A process that reads an object to its end and exits at once. Without `settle`, about
# half of such processes abort (SIGABRT) as the interpreter exits: obstore's thread that
# handed over the last chunk still needs the GIL then.
READ_AND_EXIT = """
import asyncio, sys, obstore
from chute.adapters.s3 import S3Connection, settle

async def main() -> None:
    store = S3Connection.from_env().bucket(sys.argv[1])
    result = await obstore.get_async(store, sys.argv[2])
    async for _ in result.stream(min_chunk_size=1 << 20):
        pass

asyncio.run(main())
settle()
"""


@pytest.mark.slow
async def test_a_process_that_let_obstore_settle_exits_cleanly(s3_server: S3Server) -> None:
    store = S3Connection.from_env(s3_server.env()).bucket(s3_server.bucket)
    await obstore.put_async(store, "settle/object.bin", bytes(8 << 20))
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = os.environ | s3_server.env() | {"PYTHONPATH": path}
    argv = ["-c", READ_AND_EXIT, s3_server.bucket, "settle/object.bin"]
    codes = []
    for _ in range(6):  # two at a time, as this machine has two cores
        pair = [await asyncio.create_subprocess_exec(sys.executable, *argv, env=env) for _ in "ab"]
        codes += [await process.wait() for process in pair]
    assert codes == [0] * 12
