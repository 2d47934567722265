"""`batch`: POST /api/v1/jobs/batch with 1,000 jobs a request into SQLite: jobs/s.

Baseline: the no-op app parsing the same batch (`BatchCreateRequest`) and sending a
canned answer of the same size (the 1,000 jobs chute made for the same body). The two
are loaded in turn for `rounds` rounds; each one's best run counts. chute runs at the
default log level (INFO), as users run it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.core import Context, Figure, Target, recorded
from bench.data import batch_body
from bench.load import LoadResult
from bench.procs import chute_server, noop_server
from bench.runs import capture, posted

PATH = "/api/v1/jobs/batch"
JOBS = 1000


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("batch", ctx) as data:
        folder = Path(tmp)
        body = batch_body(JOBS)
        url = f"sqlite+aiosqlite:///{folder}/chute.db"
        with chute_server(folder, url, folder / "storage", log_level="INFO") as chute:
            answer = capture(chute, folder / "canned", "POST", PATH, body)
            data.update(request_bytes=len(body), response_bytes=len(answer))
            with noop_server(folder, folder / "canned") as noop:
                rounds = [
                    {
                        "noop": _load(ctx, noop, folder, body),
                        "sqlite": _load(
                            ctx, chute, folder, body, "batch-sqlite" if n == 0 else None
                        ),
                    }
                    for n in range(ctx.sizes.rounds)
                ]
        data["rounds"] = [{name: r.as_json() for name, r in one.items()} for one in rounds]
        base = max((one["noop"] for one in rounds), key=lambda r: r.rps)
        sqlite = max((one["sqlite"] for one in rounds), key=lambda r: r.rps)
        figures = [
            Figure(
                "batch.sqlite.jobs_per_s",
                sqlite.rps * JOBS,
                "jobs/s",
                base.rps * JOBS,
                "no-op",
                Target("value", ">=", 50_000),
                note=f"best of {len(rounds)} rounds, each side its best",
            ),
            Figure(
                "batch.sqlite.p50",
                sqlite.p50_ms,
                "ms",
                base.p50_ms,
                "no-op p50",
                note=f"{JOBS} jobs a request, {ctx.sizes.batch_connections} connections",
            ),
            Figure(
                "batch.sqlite.cpu",
                (sqlite.cpu_ms_per_request or 0) * 1000 / JOBS,
                "us CPU/job",
                (base.cpu_ms_per_request or 0) * 1000 / JOBS,
                "no-op",
                note="the server process's CPU per job",
            ),
        ]
        data["figures"] = figures
        return figures


def _load(
    ctx: Context, server: Any, folder: Path, body: bytes, profile: str | None = None
) -> LoadResult:
    connections = ctx.sizes.batch_connections
    return posted(ctx, server, PATH, folder, body, connections=connections, profile=profile)
