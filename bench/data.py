"""What the benchmarks send and load: request bodies, and many realistic jobs at once.

`job_rows` makes jobs as a busy service would hold them: mostly finished, some
pending or running, a mix of sources, types, priorities and modes, created over 90
days. The rows are the same on SQLite and PostgreSQL (a fixed seed). Running jobs
hold leases that end a day later, so that no rescue rewrites them mid-benchmark.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

CREATE_BODY: dict[str, Any] = {
    "source_type": "url",
    "source_uri": "https://example.org/reports/2026/q3/summary-0001.pdf",
    "file_name": "summary-0001.pdf",
    "mime_type": "application/pdf",
    "priority": "high",
    "metadata": {"tenant": "acme", "batch": 7},
}


def create_body() -> bytes:
    return json.dumps(CREATE_BODY).encode()


def batch_body(count: int = 1000) -> bytes:
    jobs = [
        {
            "source_type": "url",
            "source_uri": f"https://example.org/in/{n:06d}.pdf",
            "metadata": {"tenant": "acme", "n": n},
        }
        if n % 3
        else {
            "source_type": "s3",
            "source_uri": f"s3://acme-inbox/scans/{n:06d}.tiff",
            "priority": "low",
            "mode": "fast",
        }
        for n in range(count)
    ]
    return json.dumps({"jobs": jobs}).encode()


def _weighted(pairs: list[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    return [value for value, _ in pairs], [weight for _, weight in pairs]


STATUSES = _weighted(
    [
        ("completed", 55),
        ("pending", 20),
        ("failed", 8),
        ("cancelled", 5),
        ("running", 10),
        ("cancelling", 2),
    ]
)
SOURCES = _weighted([("url", 60), ("s3", 30), ("upload", 10)])
TYPES = _weighted(
    [
        ("application/pdf", 25),
        ("image/png", 12),
        ("image/jpeg", 12),
        ("image/gif", 3),
        ("text/plain", 10),
        ("application/json", 8),
        ("text/csv", 5),
        ("text/html", 5),
        ("application/zip", 5),
        (None, 15),
    ]
)
PRIORITIES = _weighted([(0, 15), (1, 60), (2, 20), (3, 5)])  # Priority ranks: low..urgent
MODES = _weighted([("auto", 70), ("fast", 20), ("accurate", 10)])
EXTENSIONS = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "text/plain": "txt",
    "application/json": "json",
    "text/csv": "csv",
    "text/html": "html",
    "application/zip": "zip",
    None: "bin",
}
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne")
SPAN = timedelta(days=90)


def uuid7(moment: datetime, rand: random.Random) -> UUID:
    """A UUIDv7 for `moment`, so that ids sort by creation time as chute's do."""
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rand.getrandbits(12) << 64)
    return UUID(int=value | (0b10 << 62) | rand.getrandbits(62))


def job_rows(count: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(jobs row, detection_results row or None) for `count` jobs, oldest first."""
    rand = random.Random(seed)
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    start, step = end - SPAN, SPAN / count
    for n in range(count):
        created = start + step * n + step * rand.random() * 0.9
        yield _row(n, created, rand)


def _pick(rand: random.Random, table: tuple[list[Any], list[int]]) -> Any:
    return rand.choices(table[0], table[1])[0]


def _row(n: int, created: datetime, rand: random.Random) -> tuple[dict[str, Any], Any]:
    status, source = _pick(rand, STATUSES), _pick(rand, SOURCES)
    mime, tenant = _pick(rand, TYPES), TENANTS[n % len(TENANTS)]
    job_id = uuid7(created, rand)
    name = f"doc-{n:07d}.{EXTENSIONS[mime]}"
    uri = {
        "url": f"https://files.example.org/{tenant}/{name}",
        "s3": f"s3://{tenant}-inbox/2026/{name}",
        "upload": f"upload://{job_id}/{name}",
    }[source]
    row = {
        "id": job_id,
        "status": status,
        "source_type": source,
        "source_uri": uri,
        "file_name": name,
        "file_size": rand.randrange(1_000, 50_000_000),
        "mime_type": mime,
        "priority": _pick(rand, PRIORITIES),
        "mode": _pick(rand, MODES),
        "metadata": {"tenant": tenant, "batch": n // 1000},
        "attempts": 0,
        "max_attempts": 3,
        "last_error": None,
        "worker_id": None,
        "lease_seconds": None,
        "lease_expires_at": None,
        "run_after": None,
        "started_at": None,
        "finished_at": None,
        "progress": None,
        "progress_message": None,
        "result": None,
        "created_at": created,
        "updated_at": created,
        "content_key": f"{job_id}/{name}" if source == "upload" else None,
    }
    _lifecycle(row, rand)
    detection = _detection(row) if source == "upload" and mime else None
    return row, detection


def _lifecycle(row: dict[str, Any], rand: random.Random) -> None:
    status, created = row["status"], row["created_at"]
    if status == "pending":
        return
    started = created + timedelta(seconds=rand.uniform(0.1, 30))
    row.update(attempts=rand.choice((1, 1, 1, 2, 3)), started_at=started, updated_at=started)
    if status in ("running", "cancelling"):
        lease = datetime.now(UTC) + timedelta(days=1)
        row.update(worker_id="bench-host:4242", lease_seconds=60, lease_expires_at=lease)
        return
    finished = started + timedelta(seconds=rand.uniform(0.05, 120))
    row.update(finished_at=finished, updated_at=finished, progress=100)
    if status == "completed":
        row["result"] = {"pages": rand.randrange(1, 40), "ok": True}
    elif status == "failed":
        row.update(last_error="HTTPError: 404 Not Found", attempts=3)


def _detection(row: dict[str, Any]) -> dict[str, Any]:
    mime = row["mime_type"]
    label = EXTENSIONS[mime]
    return {
        "job_id": row["id"],
        "mime_type": mime,
        "label": label,
        "group_name": "document",
        "confidence": 0.99,
        "detector": "libmagic",
        "sha256": row["id"].hex * 2,
        "size": row["file_size"],
        "detected_at": row["created_at"],
    }
