"""`create`: POST /api/v1/jobs, requests/s and latency, on SQLite and PostgreSQL.

Baseline: the no-op app (bench/noop_app.py) parsing the same body with the same model
and sending a canned answer of the same size, under the same load in the same run.
The three servers are loaded in turn, for `rounds` rounds, and each one's best run
counts, so that a burst of noise on the machine hurts neither side for long. A last run repeats the
SQLite case with CHUTE_LOG_LEVEL=INFO (one JSON line per request, to a file), to show
what request logging costs. A fourth server, on SQLite with CHUTE_METRICS=false, is
loaded in the same rounds: the cost of counting for /metrics (metrics are on in the
others, as by default).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.core import Context, Figure, Target, recorded
from bench.data import create_body
from bench.load import LoadResult
from bench.postgres import fresh_database
from bench.procs import Server, chute_server, migrate, noop_server
from bench.runs import capture, posted

PATH = "/api/v1/jobs"
TARGET = Target("ratio", ">=", 0.5)
METRICS_TARGET = Target("ratio", ">=", 0.95)


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("create", ctx) as data:
        folder, body = Path(tmp), create_body()
        sqlite_url = f"sqlite+aiosqlite:///{folder}/chute.db"
        with ExitStack() as servers:
            sqlite = servers.enter_context(chute_server(folder, sqlite_url, folder / "storage"))
            postgres = servers.enter_context(_postgres(ctx, folder))
            answer = capture(sqlite, folder / "canned", "POST", PATH, body)
            data["response_bytes"] = len(answer)
            noop = servers.enter_context(noop_server(folder, folder / "canned"))
            unmetered = servers.enter_context(_without_metrics(folder))
            targets = {
                "noop": noop,
                "sqlite": sqlite,
                "postgres": postgres,
                "sqlite_no_metrics": unmetered,
            }
            # Every other round in the reverse order, so that no server is always loaded
            # right after the same one (the two SQLite servers are compared closely).
            orders = [targets, dict(reversed(targets.items()))]
            rounds = [
                _round(ctx, orders[n % 2], folder, body, first=n == 0)
                for n in range(ctx.sizes.rounds)
            ]
        with chute_server(folder, sqlite_url, folder / "storage", log_level="INFO") as chute:
            logged = _load(ctx, chute, folder, body)
        data["rounds"] = [{name: r.as_json() for name, r in one.items()} for one in rounds]
        data["sqlite_info_logging"] = logged.as_json()
        best = {name: max((one[name] for one in rounds), key=lambda r: r.rps) for name in targets}
        figures = _figures(best, logged, len(rounds))
        data["figures"] = figures
        return figures


def _round(
    ctx: Context, targets: dict[str, Server], folder: Path, body: bytes, first: bool
) -> dict[str, LoadResult]:
    """One load run on each server in turn; the first round's chute runs may be profiled."""
    return {
        name: _load(
            ctx, server, folder, body, f"create-{name}" if first and name != "noop" else None
        )
        for name, server in targets.items()
    }


def _load(
    ctx: Context, server: Any, folder: Path, body: bytes, profile: str | None = None
) -> LoadResult:
    connections = ctx.sizes.connections
    return posted(ctx, server, PATH, folder, body, connections=connections, profile=profile)


@contextmanager
def _without_metrics(folder: Path) -> Iterator[Server]:
    """The SQLite server again, on a database and storage of its own, metrics off."""
    url = f"sqlite+aiosqlite:///{folder}/chute-no-metrics.db"
    off = {"CHUTE_METRICS": "false"}
    with chute_server(folder, url, folder / "storage-no-metrics", extra_env=off) as chute:
        yield chute


@contextmanager
def _postgres(ctx: Context, folder: Path) -> Iterator[Server]:
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_create"))
    migrate(url)
    with chute_server(folder, url, folder / "storage-pg") as chute:
        yield chute


def _figures(best: dict[str, LoadResult], logged: LoadResult, rounds: int) -> list[Figure]:
    noop = best["noop"]
    figures = []
    for name in ("sqlite", "postgres"):
        result = best[name]
        figures += [
            Figure(
                f"create.{name}.rps",
                result.rps,
                "req/s",
                noop.rps,
                "no-op",
                TARGET,
                note=f"best of {rounds} rounds, each side its best",
            ),
            Figure(f"create.{name}.p50", result.p50_ms, "ms", noop.p50_ms, "no-op p50"),
            Figure(f"create.{name}.p99", result.p99_ms, "ms", noop.p99_ms, "no-op p99"),
            Figure(
                f"create.{name}.cpu",
                result.cpu_ms_per_request,
                "ms CPU/req",
                noop.cpu_ms_per_request,
                "no-op",
                note="the server process's CPU per request"
                + ("; PostgreSQL's own not counted" if name == "postgres" else ""),
            ),
        ]
    figures.append(
        Figure(
            "create.sqlite.rps_metrics",
            best["sqlite"].rps,
            "req/s",
            best["sqlite_no_metrics"].rps,
            "CHUTE_METRICS=false",
            METRICS_TARGET,
            note="metrics on (the default) against off, SQLite, each its best round",
        )
    )
    figures.append(
        Figure(
            "create.sqlite.cpu_metrics",
            best["sqlite"].cpu_ms_per_request,
            "ms CPU/req",
            best["sqlite_no_metrics"].cpu_ms_per_request,
            "CHUTE_METRICS=false",
            note="the server's CPU per request, metrics on against off: steadier than req/s",
        )
    )
    figures.append(
        Figure(
            "create.sqlite.rps_info_log",
            logged.rps,
            "req/s",
            best["sqlite"].rps,
            "WARNING level",
            note="CHUTE_LOG_LEVEL=INFO: one JSON line per request",
        )
    )
    return figures
