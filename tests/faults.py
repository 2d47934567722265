"""Helpers of the fault tests (`tests/e2e/test_faults_*.py`): real `chute serve` and
`chute worker` processes that can be killed, clients that keep creating jobs and tally
what was acknowledged, slow multipart bodies, a tmpfs of a given size, and a PostgreSQL
that can be stopped and started again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy.engine import make_url

from tests import pg

URL_JOB: dict[str, Any] = {"source_type": "url", "source_uri": "https://example.org/fault.pdf"}


def chute(*args: str) -> list[str]:
    """The command line of `chute ARGS` in this interpreter."""
    return [sys.executable, "-m", "chute.entrypoints", *args]


def chute_env(database_url: str, storage: Path, **settings: str) -> dict[str, str]:
    """The environment of a chute process on this database and storage folder."""
    env = os.environ | {
        "CHUTE_DATABASE_URL": database_url,
        "CHUTE_STORAGE_DIR": str(storage),
        "CHUTE_LOG_FORMAT": "json",
    }
    return env | {f"CHUTE_{key.upper()}": value for key, value in settings.items()}


# -- chute serve ---------------------------------------------------------------------------


class ChuteServer:
    """`chute serve` on a free port of 127.0.0.1; each start appends to one log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = pg.free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 60) -> None:
        """Start the process (on the same port as before) and wait until /healthz answers."""
        self.process = self._spawn()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=1) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"chute serve exited with {self.process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise AssertionError(f"chute serve did not answer /healthz within {timeout}s")

    async def __aenter__(self) -> ChuteServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            return subprocess.Popen(
                chute("serve", "--port", str(self.port)),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, no last commit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL when it does not end in time. Safe to call twice."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class WorkerProcess:
    """One `chute worker` (run in `cwd` when given), its output in a log file."""

    def __init__(
        self, env: dict[str, str], log: Path, *options: str, cwd: Path | None = None
    ) -> None:
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                chute("worker", *options), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


# -- load and its tally --------------------------------------------------------------------


@dataclass
class Tally:
    """What clients sent and what they were told."""

    acknowledged: list[str] = field(default_factory=list)  # ids of jobs answered 201
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by type
    bodies: list[str] = field(default_factory=list)  # bodies of unexpected answers
    latencies: list[float] = field(default_factory=list)

    def record(self, response: httpx.Response, seconds: float, expected: int) -> None:
        self.statuses[response.status_code] += 1
        self.latencies.append(seconds)
        if response.status_code != expected and len(self.bodies) < 10:
            self.bodies.append(f"{response.status_code} {response.text[:300]}")

    def summary(self) -> str:
        worst = max(self.latencies, default=0.0)
        return (
            f"acknowledged={len(self.acknowledged)} statuses={dict(self.statuses)} "
            f"transport_errors={dict(self.errors)} max_latency={worst:.2f}s"
        )


async def keep_creating(
    base_url: str, tally: Tally, stop: asyncio.Event, *, client_id: int, timeout: float = 30
) -> None:
    """Create url jobs one after another until `stop` is set or the server goes away."""
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        n = 0
        while not stop.is_set():
            body = URL_JOB | {"metadata": {"client": client_id, "n": n}}
            started = time.monotonic()
            try:
                response = await client.post("/api/v1/jobs", json=body)
            except httpx.TransportError as e:
                tally.errors[type(e).__name__] += 1
                return  # the server is gone (killed): this client is done
            tally.record(response, time.monotonic() - started, 201)
            if response.status_code == 201:
                tally.acknowledged.append(response.json()["id"])
            n += 1


async def keep_working(
    base_url: str, tally: Tally, stop: asyncio.Event, *, worker_id: str, timeout: float = 30
) -> int:
    """Claim jobs and complete them until `stop` is set; return how many it completed."""
    done = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        while not stop.is_set():
            started = time.monotonic()
            claim = {"worker_id": worker_id, "limit": 5, "lease_seconds": 60}
            response = await client.post("/api/v1/jobs/claim", json=claim)
            tally.record(response, time.monotonic() - started, 200)
            jobs = response.json()["jobs"] if response.status_code == 200 else []
            for job in jobs:
                started = time.monotonic()
                body = {"worker_id": worker_id, "result": {"ok": True}}
                response = await client.post(f"/api/v1/jobs/{job['id']}/complete", json=body)
                tally.record(response, time.monotonic() - started, 200)
                done += response.status_code == 200
            if not jobs:
                await asyncio.sleep(0.05)
    return done


async def fetch_all(base_url: str, ids: list[str], concurrency: int = 8) -> Counter[int]:
    """GET every job of `ids`; the count of answers by status."""
    found: Counter[int] = Counter()
    queue = list(ids)

    async def fetch() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while queue:
                job_id = queue.pop()
                response = await client.get(f"/api/v1/jobs/{job_id}")
                found[response.status_code] += 1

    await asyncio.gather(*(fetch() for _ in range(concurrency)))
    return found


# -- what is on disk -----------------------------------------------------------------------


def integrity_check(database: Path) -> str:
    """SQLite's own verdict on the file ('ok' when sound)."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(row[0]) for row in rows)


def sqlite_job_ids(database: Path) -> set[UUID]:
    """Every job id in the file, however the column stores it."""
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        return {UUID(str(row[0])) for row in conn.execute("SELECT id FROM jobs")}


def leftovers(root: Path) -> list[str]:
    """Every file and folder below `root`, relative to it (hidden ones included)."""
    if not root.exists():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


# -- multipart bodies ----------------------------------------------------------------------

BOUNDARY = "chute-fault-boundary"


def multipart_head(name: str, content_type: str = "application/octet-stream") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()


MULTIPART_TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


async def slow_file_body(
    name: str, size: int, chunk: int, pause: float, sent: list[int]
) -> AsyncIterator[bytes]:
    """A one-file multipart body of `size` bytes, `chunk` at a time with `pause` between;
    `sent[0]` counts the file bytes handed to the client so far."""
    yield multipart_head(name)
    block = bytes(range(256)) * (chunk // 256)
    while sent[0] < size:
        piece = block[: min(chunk, size - sent[0])]
        yield piece
        sent[0] += len(piece)
        await asyncio.sleep(pause)
    yield MULTIPART_TAIL


# -- a small file system -------------------------------------------------------------------


class MountRefused(RuntimeError):
    """mount(8) refused: not root, or no tmpfs here."""


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. '2m') mounted on `folder` (made if missing) until exit."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise MountRefused(done.stderr.strip() or f"mount exited with {done.returncode}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, name: str = "filler.bin") -> int:
    """Write into `folder` until its file system is full; return the bytes written."""
    written = 0
    block = b"\0" * 64 * 1024
    with open(folder / name, "wb", buffering=0) as handle:
        try:
            while True:
                written += handle.write(block)
        except OSError:
            pass
    # A page may still be free for a smaller write: take it too.
    with contextlib.suppress(OSError), open(folder / name, "ab", buffering=0) as handle:
        while handle.write(b"\0" * 512):
            written += 512
    return written


# -- a PostgreSQL that can be stopped and started again ------------------------------------


class RestartablePostgres:
    """A throw-away server (tests/pg.py's) that `stop()` and `start()` take away and bring
    back on the same port and socket folder, so that clients' URLs stay valid."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder, self.url = folder, url

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: sessions are ended, the server is down when it returns."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "30")

    def start(self) -> None:
        """`pg_ctl start` with the options the server first started with."""
        options = {
            **pg.SERVER_OPTIONS,
            "port": str(make_url(self.url).port),
            "unix_socket_directories": str(self.folder),
        }
        flags = " ".join(f"-c {key}={value}" for key, value in options.items())
        log = str(self.folder / "server.log")
        self._pg_ctl("start", "-l", log, "-w", "-t", "30", "-o", flags)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every server process stopped (SIGSTOP) until exit: connections stay open and
        connects are queued by the kernel, but nothing answers, as with a hung host."""
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)  # first, so that it forks no new backend
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        pids = [postmaster, *map(int, children)]
        for pid in pids[1:]:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def _pg_ctl(self, action: str, *args: str) -> None:
        data = str(self.folder / "data")
        # tests/pg.py's own runner: as the postgres user when we are root.
        done = pg._run_as_owner(["pg_ctl", action, "-D", data, *args], self.folder)
        if done.returncode != 0:
            raise pg.PostgresUnavailable(f"pg_ctl {action} failed:\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A new server of our own (never $CHUTE_TEST_POSTGRES_URL: it is stopped on purpose)."""
    folder = Path(tempfile.mkdtemp(prefix="chute-pg-faults-"))
    try:
        yield RestartablePostgres(folder, pg._start(folder))
    finally:
        pg._stop(folder)
