"""`parts`: what one create costs, part by part, in process.

`create` finds chute's server spending three to four times the no-op's CPU a request;
a profile of it is flat. This measures the parts by taking each away: creates are
driven straight into the ASGI app, 64 in flight, in a fresh process per case
(bench/parts_child.py), on a SQLite file, and each case's CPU time a create (all its
threads) is compared with chute's whole app, same run:

- `chute`: the app as `chute serve` runs it (INFO logs as JSON lines into a file,
  metrics on);
- `warning`: at WARNING, without the request's two log lines;
- `no_metrics`: `CHUTE_METRICS=false`;
- `no_middleware`: without chute's middlewares (request id and its log line, telemetry
  and metrics, header limit, unread-body drain);
- `stand_in_engine`: the engine replaced by one that answers a job made before: the
  HTTP layer alone (FastAPI's routing, dependencies and validation, the middlewares,
  the request's log line, the answer);
- `engine`: `engine.create_job` called directly: the use case alone (validation, the
  job, its event, the group commit and its wait, the use case's log line);
- `noop`: the no-op app (bench/noop_app.py), FastAPI validating the same body.

The cases alternate, 3 rounds (`Sizes.parts_rounds`); each case's lowest CPU counts. No server: its
parser and socket writes (about 0.1 ms a request, the same for every case) are in
`create`'s figures, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.core import Context, Figure, recorded
from bench.procs import ROOT, base_env

CASES = ("chute", "warning", "no_metrics", "no_middleware", "stand_in_engine", "engine", "noop")


def run(ctx: Context) -> list[Figure]:
    with recorded("parts", ctx) as data:
        rounds: list[dict[str, dict[str, float]]] = []
        for _ in range(ctx.sizes.parts_rounds):
            rounds.append({case: _case(case, ctx.sizes.parts_requests) for case in CASES})
        data["rounds"] = rounds
        best = {case: min(r[case]["cpu_us"] for r in rounds) for case in CASES}
        data["best_cpu_us"] = best
        figures = _figures(best)
        data["figures"] = figures
        return figures


def _case(case: str, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-parts-") as folder:
        command = [sys.executable, "-m", "bench.parts_child", case]
        command += ["--requests", str(requests), "--folder", folder]
        done = subprocess.run(
            command, env=base_env(), cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            log = Path(folder, "log.jsonl")
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"parts case {case} failed: {done.stderr[-2000:]}{tail}")
        figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"   {case}: {figures['cpu_us']:.0f} us CPU a create, {figures['per_s']:.0f}/s")
        return figures


def _figures(best: dict[str, float]) -> list[Figure]:
    whole = best["chute"]

    def figure(name: str, value: float, note: str) -> Figure:
        return Figure(
            f"parts.sqlite.{name}", value, "us CPU a create", whole, "chute's whole app", note=note
        )

    def without(case: str, name: str, what: str) -> Figure:
        note = f"{what}: chute {whole:.0f} us, without it ({case}) {best[case]:.0f} us"
        return figure(name, whole - best[case], note)

    return [
        figure("app", whole, "the whole app, in process (no server)"),
        figure("noop_app", best["noop"], "the no-op app: FastAPI validating the same body"),
        figure("http_layer", best["stand_in_engine"], "the app over a stand-in engine"),
        figure("use_case", best["engine"], "engine.create_job alone, 64 at once"),
        without("warning", "log_lines", "the request's two INFO lines"),
        without("no_metrics", "metrics", "counting for /metrics"),
        without("no_middleware", "middleware", "chute's middlewares and the request's line"),
    ]
