"""`create`: POST /api/v1/jobs, requests/s and latency, on SQLite and PostgreSQL.

chute runs as a user runs it: the default log level (INFO: a JSON line per request and
per use case), metrics on. Baseline: the no-op app (bench/noop_app.py) parsing the same
body with the same model and sending a canned answer of the same size, under the same
load in the same run, through the same server stack. Each server is loaded under wrk's
two shapes (1 thread x 64 connections, 2 threads x 32), in turn, for `rounds` rounds
(every other one in the reverse order), and each one's best run counts, so that a
burst of noise on the machine hurts neither side for long. A fourth server, on SQLite
with CHUTE_METRICS=false, is loaded in the same rounds: the cost of counting for
/metrics. A last run repeats the SQLite case at CHUTE_LOG_LEVEL=WARNING, to show what
the default log lines cost.
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
SHAPES = ((1, 64), (2, 32))  # wrk threads x connections; the first is the headline
METRICS_TARGET = Target("ratio", ">=", 0.95)


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("create", ctx) as data:
        folder, body = Path(tmp), create_body()
        sqlite_url = f"sqlite+aiosqlite:///{folder}/chute.db"
        with ExitStack() as servers:
            sqlite = servers.enter_context(
                chute_server(folder, sqlite_url, folder / "storage", log_level="INFO")
            )
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
        with chute_server(folder, sqlite_url, folder / "storage", log_level="WARNING") as chute:
            quiet = _load(ctx, chute, folder, body, SHAPES[0])
        data["rounds"] = [{name: r.as_json() for name, r in one.items()} for one in rounds]
        data["sqlite_warning_logging"] = quiet.as_json()
        best = {name: max((one[name] for one in rounds), key=lambda r: r.rps) for name in rounds[0]}
        figures = _figures(best, quiet, len(rounds))
        data["figures"] = figures
        return figures


def _round(
    ctx: Context, targets: dict[str, Server], folder: Path, body: bytes, first: bool
) -> dict[str, LoadResult]:
    """One load run on each server in turn, in each shape (results named `server` for
    1x64, `server@2x32`); the first round's chute runs may be profiled."""
    results = {}
    for shape in SHAPES:
        for name, server in targets.items():
            profile = f"create-{name}" if first and name != "noop" and shape == SHAPES[0] else None
            key = name if shape == SHAPES[0] else f"{name}@{shape[0]}x{shape[1]}"
            results[key] = _load(ctx, server, folder, body, shape, profile)
    return results


def _load(
    ctx: Context,
    server: Any,
    folder: Path,
    body: bytes,
    shape: tuple[int, int],
    profile: str | None = None,
) -> LoadResult:
    threads, connections = shape
    return posted(
        ctx, server, PATH, folder, body, connections=connections, threads=threads, profile=profile
    )


@contextmanager
def _without_metrics(folder: Path) -> Iterator[Server]:
    """The SQLite server again, on a database and storage of its own, metrics off."""
    url = f"sqlite+aiosqlite:///{folder}/chute-no-metrics.db"
    off = {"CHUTE_METRICS": "false"}
    storage = folder / "storage-no-metrics"
    with chute_server(folder, url, storage, log_level="INFO", extra_env=off) as chute:
        yield chute


@contextmanager
def _postgres(ctx: Context, folder: Path) -> Iterator[Server]:
    url = asyncio.run(fresh_database(ctx.postgres(), "bench_create"))
    migrate(url)
    with chute_server(folder, url, folder / "storage-pg", log_level="INFO") as chute:
        yield chute


def _figures(best: dict[str, LoadResult], quiet: LoadResult, rounds: int) -> list[Figure]:
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
                note=f"wrk 1x64, INFO logs; best of {rounds} rounds, each side its best",
            ),
            Figure(
                f"create.{name}.rps_2x32",
                best[f"{name}@2x32"].rps,
                "req/s",
                best["noop@2x32"].rps,
                "no-op",
                TARGET,
                note="wrk 2 threads x 32 connections",
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
            best["sqlite"].rps,
            "req/s",
            quiet.rps,
            "WARNING level",
            note="the default INFO lines (one per request, one per use case) against none",
        )
    )
    return figures
