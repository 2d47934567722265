"""`s3upload`: POST /api/v1/upload of one large file into S3 storage (SeaweedFS).

One file (256 MiB; 1 GiB with --full: the sizes of `upload`'s large file) streamed by
the client from a generator to a `chute serve` whose storage is a bucket
(`CHUTE_STORAGE_URL=s3://bucket/prefix`, signed in by the AWS_* variables), on SQLite,
in MiB/s, against a plain obstore put of the same bytes to the same server: `put_async`
of an async iterator of the same 1 MiB chunks, in parts of the same 5 MiB, from this
process. Each round (`rounds`) puts, then uploads; one more put ends the run; each
side's fastest counts. Every put and every uploaded file is deleted once measured.

SeaweedFS runs as the tests run it (tests/s3.py: `weed mini`, authentication on), on
the same cores as both sides. Chute's storage is a prefix of its own, fresh for its
fresh database (one storage belongs to one database: `chute-deployment.json` at its
root); the puts go beside it, under another prefix.

The server's memory as in `upload`: RSS when idle after a small warm-up upload (the
detectors loaded, the S3 client made), and the peak during the upload (VmHWM,
restarted through clear_refs, and VmRSS sampled every 10 ms); the growth is peak minus
idle, the largest of the rounds. CPU: the server process over its upload, against
this process over its put (obstore's threads included), in ms per MiB.

Its own benchmark, not part of `upload`: it needs SeaweedFS, whose failure to start
must not cost the local figures, and its neighbours' CPU is its own.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import obstore
from chute.adapters.s3 import S3Connection
from chute.adapters.storage.s3 import PART_SIZE, PARTS_IN_FLIGHT
from obstore.store import S3Store

from bench.core import Context, Figure, Target, recorded
from bench.neighbours import cpu_seconds
from bench.procs import Server, chute_server
from bench.uploading import RssSampler, chunks, random_block, upload
from tests.s3 import seaweedfs_server

MIB = 1024 * 1024
PUT_CONCURRENCY = 12  # obstore's default for put_async: the plain put, as a client has it


def run(ctx: Context) -> list[Figure]:
    size = ctx.sizes.large_upload_mib * MIB
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        seaweedfs_server() as server,
        recorded("s3upload", ctx) as data,
    ):
        run_prefix = f"bench-s3upload-{secrets.token_hex(4)}"
        connection = S3Connection.from_env(server.env())
        bucket = connection.bucket(server.bucket)
        files = connection.bucket(server.bucket, f"{run_prefix}/chute")  # chute's storage
        env = server.env() | {"CHUTE_STORAGE_URL": f"s3://{server.bucket}/{run_prefix}/chute"}
        block = random_block()
        folder = Path(tmp)
        weed = _weed_pids()
        url = f"sqlite+aiosqlite:///{folder}/chute.db"
        puts: list[dict[str, Any]] = []
        uploads: list[dict[str, Any]] = []
        with chute_server(folder, url, folder / "unused", extra_env=env) as chute:
            upload(chute, "warm-up.bin", 64 * 1024, random_block())  # detectors, S3 client
            for n in range(ctx.sizes.rounds):
                puts.append(_put(bucket, f"{run_prefix}/plain/put-{n}.bin", size, block, weed))
                uploads.append(_upload(chute, files, size, block, weed))
                _report(n, puts[-1], uploads[-1])
            puts.append(_put(bucket, f"{run_prefix}/plain/put-last.bin", size, block, weed))
        data.update(bytes=size, puts=puts, uploads=uploads, part_size=PART_SIZE)
        figures = _figures(size, puts, uploads)
        data["figures"] = figures
        return figures


def _report(n: int, put: dict[str, Any], uploaded: dict[str, Any]) -> None:
    print(
        f"   round {n + 1}: chute {uploaded['mib_per_s']:.0f} MiB/s, "
        f"obstore put {put['mib_per_s']:.0f} MiB/s, "
        f"RSS +{(uploaded['peak_rss_kib'] - uploaded['idle_rss_kib']) / 1024:.1f} MiB",
        flush=True,
    )


def _weed_pids() -> list[int]:
    """SeaweedFS's processes: this process's children named weed (tests/s3.py's)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1]
        if name == "weed" and int(fields.split()[1]) == os.getpid():
            found.append(int(pid))
    return found


def _put(bucket: S3Store, key: str, size: int, block: bytes, weed: list[int]) -> dict[str, Any]:
    """The baseline: the same chunks put by obstore from this process, then deleted."""

    async def stream() -> AsyncIterator[bytes]:
        for piece in chunks(size, block):
            yield piece

    async def put() -> None:
        await obstore.put_async(
            bucket, key, stream(), chunk_size=PART_SIZE, max_concurrency=PUT_CONCURRENCY
        )

    cpu, weed_cpu = time.process_time(), cpu_seconds(weed)
    started = time.perf_counter()
    asyncio.run(put())
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    weed_cpu = cpu_seconds(weed) - weed_cpu
    stored = obstore.head(bucket, key)["size"]
    obstore.delete(bucket, key)
    if stored != size:
        raise RuntimeError(f"the put of {key} stored {stored} bytes, not {size}")
    return _rates(size, seconds, cpu, weed_cpu)


def _upload(
    chute: Server, files: S3Store, size: int, block: bytes, weed: list[int]
) -> dict[str, Any]:
    """One upload through chute, its memory sampled; its file checked and deleted after."""
    idle = chute.memory_kib("VmRSS")
    reset = chute.reset_peak_memory()
    cpu, weed_cpu = chute.cpu_seconds(), cpu_seconds(weed)
    with RssSampler(chute) as sampler:
        started = time.perf_counter()
        status, _ = upload(chute, "large.bin", size, block)
        seconds = time.perf_counter() - started
    cpu, weed_cpu = chute.cpu_seconds() - cpu, cpu_seconds(weed) - weed_cpu
    peak = max(sampler.peak, chute.memory_kib("VmHWM") if reset else 0)
    found = [m for m in obstore.list(files).collect() if m["path"].endswith("/large.bin")]
    obstore.delete(files, [m["path"] for m in found])
    if [m["size"] for m in found] != [size]:
        raise RuntimeError(f"chute stored {[m['size'] for m in found]} bytes, not {size}")
    return _rates(size, seconds, cpu, weed_cpu) | {
        "status": status,
        "idle_rss_kib": idle,
        "peak_rss_kib": peak,
        "hwm_reset": reset,
    }


def _rates(size: int, seconds: float, cpu: float, weed_cpu: float) -> dict[str, float]:
    mib = size / MIB
    return {
        "seconds": seconds,
        "mib_per_s": mib / seconds,
        "cpu_seconds": cpu,
        "cpu_ms_per_mib": 1000 * cpu / mib,
        "seaweedfs_cpu_ms_per_mib": 1000 * weed_cpu / mib,
    }


def _figures(size: int, puts: list[dict[str, Any]], uploads: list[dict[str, Any]]) -> list[Figure]:
    mib = size / MIB
    fastest = min(uploads, key=lambda u: u["seconds"])
    worst = max(uploads, key=lambda u: u["peak_rss_kib"] - u["idle_rss_kib"])
    growth = (worst["peak_rss_kib"] - worst["idle_rss_kib"]) / 1024
    setting = (
        f"{mib:.0f} MiB in one request, best of {len(uploads)}; "
        f"parts of {PART_SIZE // MIB} MiB, {PARTS_IN_FLIGHT} in flight "
        f"(put: {PUT_CONCURRENCY}); HTTP {fastest['status']}"
    )
    return [
        Figure(
            "s3upload.large.mib_per_s",
            mib / fastest["seconds"],
            "MiB/s",
            mib / min(p["seconds"] for p in puts),
            "obstore put",
            Target("ratio", ">=", 0.8),
            note=setting,
        ),
        Figure(
            "s3upload.large.rss_growth",
            growth,
            "MiB",
            worst["idle_rss_kib"] / 1024,
            "idle RSS MiB",
            Target("value", "<", 64),
            note=f"peak {worst['peak_rss_kib'] / 1024:.0f} MiB during the upload",
        ),
        Figure(
            "s3upload.large.cpu_per_mib",
            min(u["cpu_ms_per_mib"] for u in uploads),
            "ms CPU/MiB",
            min(p["cpu_ms_per_mib"] for p in puts),
            "obstore put",
            note=f"the server process, against this process's put; SeaweedFS "
            f"{min(r['seaweedfs_cpu_ms_per_mib'] for r in uploads + puts):.1f} ms/MiB",
        ),
    ]
