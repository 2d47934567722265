"""The processes under test: `chute serve`, the no-op app, `chute worker`, and their memory.

Every server is a real process on a free loopback port, started with the same Python
as the benchmark and stopped with SIGTERM when its block ends. Its output goes to a
log file, whose end is shown when it fails to start.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.core import ROOT
from tests.pg import free_port

GIB = 1024**3


@dataclass
class Server:
    """A server process listening on 127.0.0.1:`port`."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def memory_kib(self, field: str = "VmRSS") -> int:
        """A field of /proc/PID/status in KiB: VmRSS (now) or VmHWM (peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise LookupError(field)

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process (all its threads) and of the
        processes it started (a server's workers: granian's)."""
        return sum(_cpu_seconds(pid) for pid in _tree(self.process.pid))

    def reset_peak_memory(self) -> bool:
        """Restart VmHWM from the current RSS (Linux >= 4.0); False when not allowed."""
        try:
            Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, now."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            pids += _tree(child)
    return pids


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def base_env(**settings: str) -> dict[str, str]:
    """The environment of a child: this one without CHUTE_* settings, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CHUTE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(settings)
    return env


def chute_env(database_url: str, storage: Path, log_level: str = "WARNING") -> dict[str, str]:
    return base_env(
        CHUTE_DATABASE_URL=database_url,
        CHUTE_STORAGE_DIR=str(storage),
        CHUTE_LOG_LEVEL=log_level,
        CHUTE_LOG_FORMAT="json",
        CHUTE_MAX_UPLOAD_BYTES=str(2 * GIB),  # the large-upload case sends 1 GiB
    )


def chute(*args: str) -> list[str]:
    """The `chute` command, run by this Python (as `python -m chute.entrypoints`)."""
    return [sys.executable, "-m", "chute.entrypoints", *args]


def migrate(database_url: str) -> None:
    """`chute migrate`: `chute serve` migrates SQLite itself, PostgreSQL needs this."""
    subprocess.run(
        chute("migrate"),
        env=chute_env(database_url, Path("/nonexistent")),
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


@contextmanager
def chute_server(
    folder: Path,
    database_url: str,
    storage: Path,
    log_level: str = "WARNING",
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """`chute serve` on a free port, on `database_url`, storing files under `storage`
    (or where `extra_env` says: CHUTE_STORAGE_URL and AWS_* for a bucket)."""
    port = free_port()
    env = chute_env(database_url, storage, log_level) | dict(extra_env or {})
    with serving("chute", chute("serve", "--port", str(port)), env, port, folder) as server:
        yield server


@contextmanager
def noop_server(folder: Path, canned: Path) -> Iterator[Server]:
    """The no-op app (`bench/noop_app.py`) on a free port, answering from `canned`."""
    port = free_port()
    env = base_env(BENCH_CANNED_DIR=str(canned), CHUTE_LOG_LEVEL="WARNING", CHUTE_LOG_FORMAT="json")
    argv = [sys.executable, "-m", "bench.noop_app", "--port", str(port)]
    with serving("noop", argv, env, port, folder) as server:
        yield server


@contextmanager
def list_raw_server(folder: Path, database_url: str) -> Iterator[Server]:
    """The raw-parts list app (`bench/list_raw_app.py`) on a free port, on `database_url`."""
    port = free_port()
    env = base_env(
        CHUTE_DATABASE_URL=database_url, CHUTE_LOG_LEVEL="WARNING", CHUTE_LOG_FORMAT="json"
    )
    argv = [sys.executable, "-m", "bench.list_raw_app", "--port", str(port)]
    with serving("raw", [*argv, "--database-url", database_url], env, port, folder) as server:
        yield server


@contextmanager
def serving(
    name: str, argv: Sequence[str], env: dict[str, str], port: int, folder: Path
) -> Iterator[Server]:
    log = folder / f"{name}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    server = Server(name, process, port, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        stop(process)


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited ({server.process.returncode}):\n{tail(server.log)}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer /healthz in {timeout}s:\n{tail(server.log)}")


def stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
