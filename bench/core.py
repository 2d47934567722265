"""What every benchmark shares: its settings, its figures, the results folder, the table.

A benchmark is a function `run(ctx) -> list[Figure]`. Each figure is compared with a
baseline measured in the same run (a no-op server, a raw disk write, another library),
so that a slow or busy machine moves both and their ratio stays meaningful.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.neighbours import Neighbours

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Target:
    """A goal: `on` ("ratio" or "value") compared by `op` (">=", "<=", "<") with `threshold`."""

    on: str
    op: str
    threshold: float

    def met_by(self, value: float | None, ratio: float | None) -> bool | None:
        measured = ratio if self.on == "ratio" else value
        if measured is None:
            return None
        if self.op == ">=":
            return measured >= self.threshold
        if self.op == "<=":
            return measured <= self.threshold
        return measured < self.threshold

    def __str__(self) -> str:
        return f"{'ratio' if self.on == 'ratio' else 'value'} {self.op} {self.threshold:g}"


@dataclass
class Figure:
    """One measured number, its same-run baseline, and the goal it is held to (if any)."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    ratio: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.ratio is None and self.value is not None and self.baseline:
            self.ratio = self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met_by(self.value, self.ratio)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = str(self.target) if self.target else None
        data["met"] = self.met
        return data


@dataclass
class Sizes:
    """How much each benchmark does; `--quick` shrinks everything for trying the scripts."""

    load_seconds: float = 10.0  # create and batch, per server and round
    rounds: int = 2  # create, batch and workers: each side's best round counts
    warmup_seconds: float = 2.0
    connections: int = 64
    batch_connections: int = 4
    list_seconds: float = 4.0  # per list case, per server
    list_rows: tuple[int, ...] = (10_000,)
    console_rows: int = 1_000_000  # console: jobs bulk-loaded (the figures are at 1M)
    walk_pages: int = 100
    large_upload_mib: int = 256
    small_files: int = 1000
    submit_files: int = 1000  # submit: files of one `chute submit`, and of the curl loop
    small_clients: int = 8
    worker_jobs: int = 5000
    enqueue_jobs: int = 20_000  # workers: jobs each side enqueues for the enqueue figure, per round
    worker_processes: int = 4
    worker_concurrency: int = 4
    detection_variants: int = 24  # files per format
    detection_passes: int = 3
    s3_objects: int = 1000  # s3ingest: objects put, then ingested by a worker
    schedules: int = 100  # schedules: every-minute schedules whose tick delays are measured
    stream_clients: int = 1000  # streams: clients reading at once
    stream_jobs: int = 500  # streams: completions each client receives
    queue_jobs: int = 3000  # queues: jobs of the measured queue, per side and round
    retry_jobs: int = 10_000  # bulkretry: failed jobs retried, per side and round
    webhook_deliveries: int = 2000  # webhooks: deliveries sent to a local receiver
    parts_requests: int = 6000  # parts: creates timed per case and round
    parts_rounds: int = 3  # parts: rounds of every case, alternating

    @classmethod
    def of(cls, *, full: bool, quick: bool) -> Sizes:
        sizes = cls()
        if full:
            sizes.list_rows = (10_000, 1_000_000)
            sizes.large_upload_mib = 1024
        if quick:
            sizes.load_seconds, sizes.warmup_seconds, sizes.list_seconds = 2.0, 0.5, 1.0
            sizes.rounds = 1
            sizes.list_rows = tuple(max(2000, rows // 50) for rows in sizes.list_rows)
            sizes.console_rows = 20_000
            sizes.walk_pages, sizes.large_upload_mib, sizes.small_files = 10, 16, 50
            sizes.submit_files = 50
            sizes.worker_jobs, sizes.detection_variants, sizes.detection_passes = 400, 3, 1
            sizes.enqueue_jobs = 2000
            sizes.s3_objects, sizes.queue_jobs, sizes.retry_jobs = 100, 300, 2000
            sizes.schedules = 20
            sizes.stream_clients, sizes.stream_jobs = 100, 100
            sizes.webhook_deliveries = 200
            sizes.parts_requests, sizes.parts_rounds = 640, 1
        return sizes


@dataclass
class Context:
    """Settings and shared resources of one `python -m bench` run."""

    sizes: Sizes
    full: bool = False
    profile: bool = False  # py-spy on the server of the create and batch benchmarks
    resources: ExitStack = field(default_factory=ExitStack)
    noise: dict[str, dict[str, Any]] = field(default_factory=dict)  # CPU of other processes
    _postgres: str | None = None

    def postgres(self) -> str:
        """The URL of the run's throw-away PostgreSQL server, started on first use."""
        if self._postgres is None:
            from bench.postgres import server

            self._postgres = self.resources.enter_context(server())
        return self._postgres

    def marks(self) -> list[str]:
        """What tells this run's processes that are not its children: its PostgreSQL
        server's port, in the server's command line."""
        if self._postgres is None:
            return []
        from sqlalchemy.engine import make_url

        return [f"port={make_url(self._postgres).port} "]

    def close(self) -> None:
        self.resources.close()


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


@contextmanager
def recorded(name: str, ctx: Context) -> Iterator[dict[str, Any]]:
    """Collect a benchmark's raw data, with the load around it, into results/NAME.json."""
    data: dict[str, Any] = {"name": name, "load_before": load_average(), "sizes": asdict(ctx.sizes)}
    started = time.monotonic()
    others = Neighbours(ctx.marks)
    try:
        with others:
            yield data
    finally:
        data["seconds"] = round(time.monotonic() - started, 1)
        data["load_after"] = load_average()
        data["other_processes"] = ctx.noise[name] = others.report()
        write_json(f"{name}.json", data)


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2, default=_plain) + "\n")
    return path


def _plain(value: object) -> object:
    if isinstance(value, Figure):
        return value.as_json()
    if isinstance(value, Target):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "commit": commit + ("+changes" if dirty else ""),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
    }
