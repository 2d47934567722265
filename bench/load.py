"""HTTP load from a separate process: wrk when installed, else `bench.loadgen` (Python).

Both send one fixed request over `connections` keep-alive connections for a fixed
time and report the same figures: requests, errors, non-2xx answers, latency
percentiles. wrk's figures come from a Lua `done` hook that prints them as JSON.
`BENCH_LOADGEN=python` forces the Python generator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.core import ROOT

MARK = "BENCH_JSON "

LUA = """
wrk.method = "{method}"
{headers}
{body}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests": %d, "duration_us": %d, "bytes": %d, "errors": %d, "non_2xx": %d, '
    .. '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect + e.read + e.write + e.timeout,
    e.status, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    tool: str
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    bytes: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    server_cpu_s: float | None = None  # CPU time (user + system) of the server process

    @property
    def cpu_ms_per_request(self) -> float | None:
        """The server's CPU per successful request: steadier than req/s on a busy machine."""
        if self.server_cpu_s is None or not self.ok:
            return None
        return 1000 * self.server_cpu_s / self.ok

    @property
    def ok(self) -> int:
        return max(self.requests - self.non_2xx, 0)

    @property
    def rps(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "rps": round(self.rps, 1),
            "cpu_ms_per_request": self.cpu_ms_per_request,
        }

    @classmethod
    def parse(cls, tool: str, output: str) -> LoadResult:
        line = next((x for x in output.splitlines() if x.startswith(MARK)), None)
        if line is None:
            raise RuntimeError(f"{tool} printed no result:\n{output[-2000:]}")
        raw = json.loads(line[len(MARK) :])
        return cls(
            tool=tool,
            requests=raw["requests"],
            seconds=raw["duration_us"] / 1e6,
            errors=raw["errors"],
            non_2xx=raw["non_2xx"],
            bytes=raw["bytes"],
            **{f"{k}_ms": raw[f"{k}_us"] / 1000 for k in ("p50", "p90", "p99", "max", "mean")},
        )


def tool() -> str:
    if os.environ.get("BENCH_LOADGEN") == "python" or shutil.which("wrk") is None:
        return "python"
    return "wrk"


def run_load(
    url: str,
    folder: Path,
    *,
    connections: int,
    seconds: float,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    threads: int = 1,
) -> LoadResult:
    """Send the request `url` for `seconds` (whole seconds for wrk) over `connections`, in
    another process."""
    headers = dict(headers or {})
    body_file = None
    if body is not None:
        body_file = folder / f"body-{abs(hash(body))}.bin"
        body_file.write_bytes(body)
    if tool() == "wrk":
        argv = _wrk(url, folder, method, body_file, headers, connections, seconds, threads)
    else:
        argv = _python(url, method, body_file, headers, connections, seconds)
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=seconds + 120)
    if done.returncode != 0:
        output = done.stdout[-1000:] + done.stderr[-1000:]
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}):\n{output}")
    return LoadResult.parse(tool(), done.stdout)


def _wrk(
    url: str,
    folder: Path,
    method: str,
    body_file: Path | None,
    headers: dict[str, str],
    connections: int,
    seconds: float,
    threads: int,
) -> list[str]:
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    body = ""
    if body_file is not None:
        body = f'local f = io.open("{body_file}", "rb")\nwrk.body = f:read("*a")\nf:close()'
    script = folder / f"wrk-{abs(hash((method, lines, body)))}.lua"
    script.write_text(LUA.format(method=method, headers=lines, body=body, mark=MARK))
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        url,
    ]


def _python(
    url: str,
    method: str,
    body_file: Path | None,
    headers: dict[str, str],
    connections: int,
    seconds: float,
) -> list[str]:
    argv = [sys.executable, "-m", "bench.loadgen", url, "--method", method]
    argv += ["--connections", str(connections), "--seconds", str(seconds)]
    if body_file is not None:
        argv += ["--body-file", str(body_file)]
    for key, value in headers.items():
        argv += ["--header", f"{key}: {value}"]
    return argv
