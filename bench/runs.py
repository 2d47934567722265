"""Steps the HTTP benchmarks share: one request, a canned answer for the no-op app, a load run."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

from bench.core import Context
from bench.load import LoadResult, run_load
from bench.noop_app import canned_name
from bench.procs import Server
from bench.profiling import profiled

JSON = {"Content-Type": "application/json"}


def request(
    server: Server, method: str, target: str, body: bytes | None = None, timeout: float = 120
) -> tuple[int, bytes]:
    """One request on a new connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=JSON if body is not None else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(server: Server, target: str) -> dict[str, Any]:
    status, body = request(server, "GET", target)
    if status != 200:
        raise RuntimeError(f"GET {target}: {status} {body[:500]!r}")
    result: dict[str, Any] = json.loads(body)
    return result


def can(folder: Path, method: str, target: str, body: bytes) -> None:
    """Keep `body` as the no-op app's answer to `method target`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / canned_name(method, target)).write_bytes(body)


def capture(server: Server, canned: Path, method: str, target: str, body: bytes | None) -> bytes:
    """Send one request to chute, check it succeeded, and can its answer for the no-op app."""
    status, answer = request(server, method, target, body)
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {target}: {status} {answer[:500]!r}")
    can(canned, method, target, answer)
    return answer


def posted(
    ctx: Context,
    server: Server,
    target: str,
    folder: Path,
    body: bytes,
    *,
    connections: int,
    threads: int = 1,
    profile: str | None = None,
) -> LoadResult:
    """`loaded` for a POST of `body`, as long as the run's sizes say; profiled (as
    results/PROFILE.*) when the run was asked to profile."""
    s = ctx.sizes
    return loaded(
        server,
        target,
        folder,
        method="POST",
        body=body,
        connections=connections,
        threads=threads,
        seconds=s.load_seconds,
        warmup=s.warmup_seconds,
        profile=profile if ctx.profile else None,
    )


def loaded(
    server: Server,
    target: str,
    folder: Path,
    *,
    connections: int,
    seconds: float,
    warmup: float,
    method: str = "GET",
    body: bytes | None = None,
    threads: int = 1,
    profile: str | None = None,
) -> LoadResult:
    """A warm-up run (discarded), then the measured run, of one request against `server`
    (`threads` x `connections` for wrk); with `profile`, py-spy samples the server during
    the measured run (results/PROFILE.*)."""
    headers = JSON if body is not None else None
    url = server.url + target
    load = {"connections": connections, "method": method, "body": body, "headers": headers}
    load["threads"] = threads
    if warmup > 0:
        run_load(url, folder, seconds=warmup, **load)  # type: ignore[arg-type]
    with profiled(server.process.pid, profile or "", seconds, enabled=profile is not None):
        cpu = server.cpu_seconds()
        result = run_load(url, folder, seconds=seconds, **load)  # type: ignore[arg-type]
        result.server_cpu_s = server.cpu_seconds() - cpu
    if result.errors or result.non_2xx:
        print(
            f"  ! {server.name} {method} {target[:60]}: {result.errors} socket errors, "
            f"{result.non_2xx} non-2xx of {result.requests}"
        )
    return result
