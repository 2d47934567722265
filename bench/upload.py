"""`upload`: POST /api/v1/upload of one large file, and of many small ones, into SQLite.

Large: one file (256 MiB; 1 GiB with --full) streamed by the client from a generator,
in MiB/s, against a plain Python write + fsync of the same bytes into the same
storage folder (measured before and after; the faster counts). The server's memory:
its RSS when idle (after a warm-up upload, so that the detection model is loaded),
and its peak during the upload (VmHWM, restarted through clear_refs, and VmRSS
sampled every 10 ms); the growth is peak minus idle.

Small: `small_files` files of 10 KiB, one a request, from `small_clients` concurrent
clients, in uploads/s, against writing the same files (one folder each, fsync each)
from as many threads. The files are PDFs, detected in `auto` mode (libmagic names
them, so Magika does not run).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import Context, Figure, Target, recorded
from bench.procs import Server, chute_server
from bench.uploading import (
    RssSampler,
    concurrently,
    random_block,
    raw_write,
    small_pdf,
    upload,
)

MIB = 1024 * 1024


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("upload", ctx) as data:
        folder = Path(tmp)
        storage = folder / "storage"
        storage.mkdir()
        url = f"sqlite+aiosqlite:///{folder}/chute.db"
        with chute_server(folder, url, storage) as chute:
            upload(chute, "warm-up.bin", 64 * 1024, random_block())  # loads the detectors
            data["large"] = _large(chute, storage, ctx.sizes.large_upload_mib * MIB)
            data["small"] = _small(chute, storage, ctx.sizes.small_files, ctx.sizes.small_clients)
        figures = _figures(data)
        data["figures"] = figures
        return figures


def _large(chute: Server, storage: Path, size: int) -> dict[str, Any]:
    block = random_block()
    raw = [raw_write(storage / "raw-1.bin", size, block)]
    idle = chute.memory_kib("VmRSS")
    reset = chute.reset_peak_memory()
    with RssSampler(chute) as sampler:
        started = time.perf_counter()
        status, _ = upload(chute, "large.bin", size, block)
        seconds = time.perf_counter() - started
    peak = max(sampler.peak, chute.memory_kib("VmHWM") if reset else 0)
    raw.append(raw_write(storage / "raw-2.bin", size, block))
    return {
        "bytes": size,
        "status": status,
        "seconds": seconds,
        "raw_seconds": raw,
        "idle_rss_kib": idle,
        "peak_rss_kib": peak,
        "hwm_reset": reset,
    }


def _small(chute: Server, storage: Path, count: int, clients: int) -> dict[str, Any]:
    content = small_pdf(10 * 1024)
    raw_folder = storage / "raw-small"
    raw_folder.mkdir()

    def write_one(n: int) -> None:
        (raw_folder / str(n)).mkdir()
        fd = os.open(raw_folder / str(n) / "file.pdf", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)

    raw_seconds, _ = concurrently(count, clients, lambda _conn, n: write_one(n), connect=None)
    seconds, latencies = concurrently(
        count,
        clients,
        lambda conn, n: upload(chute, f"doc-{n}.pdf", content, conn=conn),
        connect=chute,
    )
    latencies.sort()
    return {
        "files": count,
        "clients": clients,
        "seconds": seconds,
        "raw_seconds": raw_seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
    }


def _figures(data: dict[str, Any]) -> list[Figure]:
    large, small = data["large"], data["small"]
    mib = large["bytes"] / MIB
    growth = (large["peak_rss_kib"] - large["idle_rss_kib"]) / 1024
    return [
        Figure(
            "upload.large.mib_per_s",
            mib / large["seconds"],
            "MiB/s",
            mib / min(large["raw_seconds"]),
            "write+fsync",
            Target("ratio", ">=", 0.5),
            note=f"{mib:.0f} MiB in one request; HTTP {large['status']}",
        ),
        Figure(
            "upload.large.rss_growth",
            growth,
            "MiB",
            large["idle_rss_kib"] / 1024,
            "idle RSS MiB",
            Target("value", "<", 64),
            note=f"peak {large['peak_rss_kib'] / 1024:.0f} MiB during the upload",
        ),
        Figure(
            "upload.small.uploads_per_s",
            small["files"] / small["seconds"],
            "uploads/s",
            small["files"] / small["raw_seconds"],
            "write+fsync files/s",
            note=f"10 KiB each, {small['clients']} clients; p50 {small['p50_ms']:.1f} ms, "
            f"p99 {small['p99_ms']:.1f} ms",
        ),
    ]
