"""`console`: the web console's pages on 1,000,000 bulk-loaded jobs (`console_rows`),
SQLite and PostgreSQL, against the API's answer to the same question on the same server.

Jobs page: `GET /ui/jobs?...` against `GET /api/v1/jobs?...` for the same page: the
first page (the console counts a first page, up to the cap, as the API does by
default), a filtered page (`status=pending&queue=<the data's queue>`), a metadata page
(`metadata.tenant=globex`, 1 job in 7), and a page from a cursor half-way through the
set (the console makes no count after a cursor: the API side says `count=false`).
Overview: `GET /ui` (the queues' counts and the chart of the last hour) against
`GET /api/v1/queues` (the same counts, as JSON).

Each URL is sent by one connection back to back (p50/p99 by wrk); the two sides of a
case alternate, `rounds` times, and each side's best round counts. Before measuring,
every console page is checked to show the jobs the API lists for the same query.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.bulk import load_postgres, load_sqlite
from bench.core import Context, Figure, Target, recorded
from bench.data import TENANTS
from bench.listing_figures import rows_name
from bench.postgres import fresh_database
from bench.procs import Server, chute_server, migrate
from bench.runs import get_json, loaded, request

UI, API = "/ui/jobs", "/api/v1/jobs"
DATABASES = ("sqlite", "postgres")
AT_MOST_TWICE = Target("ratio", "<=", 2.0)  # console p50 / API p50
OVERVIEW_MS = Target("value", "<", 100.0)  # the overview's p50, in ms
LIMIT = 50


def run(ctx: Context) -> list[Figure]:
    rows = ctx.sizes.console_rows
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        recorded("console", ctx) as data,
    ):
        folder = Path(tmp)
        results: dict[str, Any] = data.setdefault("results", {})
        for database in DATABASES:
            key = f"{database}.{rows_name(rows)}"
            print(f"   {key}: loading", flush=True)
            results[key] = _one(ctx, folder, database, rows)
        figures = figures_of(results)
        data["figures"] = figures
        return figures


def _one(ctx: Context, folder: Path, database: str, rows: int) -> dict[str, Any]:
    url, load_seconds = _prepared(ctx, folder, database, rows)
    print(f"   {database}: {rows:,} jobs loaded in {load_seconds:.0f} s", flush=True)
    out: dict[str, Any] = {"rows": rows, "load_seconds": round(load_seconds, 1), "cases": {}}
    with chute_server(folder, url, folder / f"storage-{database}-{rows}") as chute:
        pairs = cases(chute, rows)
        for case, (console, api) in pairs.items():
            checked = _checked(chute, console, api)
            name = f"console-{database}-{case}" if ctx.profile else None
            out["cases"][case] = {
                "console": console,
                "api": api,
                **checked,
                **_alternated(ctx, chute, folder, console, api, name),
            }
    return out


def _prepared(ctx: Context, folder: Path, database: str, rows: int) -> tuple[str, float]:
    if database == "sqlite":
        path = folder / f"console-{rows}.db"
        return f"sqlite+aiosqlite:///{path}", load_sqlite(str(path), rows)
    url = asyncio.run(fresh_database(ctx.postgres(), f"bench_console_{rows}"))
    seconds = asyncio.run(load_postgres(url, rows))
    migrate(url)  # a no-op: the loader migrated; as a deployment would run it
    return url, seconds


def cases(chute: Server, rows: int) -> dict[str, tuple[str, str]]:
    """(console URL, API URL) of each case: the same filters, the same page, the same count."""
    queues = get_json(chute, "/api/v1/queues")["items"]
    queue = queues[0]["name"]  # `job_rows` puts every job in the default queue
    half = get_json(chute, f"{API}?{urlencode({'page': rows // 2, 'limit': 1, 'count': 'false'})}")
    cursor = half["next_cursor"]
    filtered = {"status": "pending", "queue": queue, "limit": LIMIT}
    tenant = {"metadata.tenant": TENANTS[1], "limit": LIMIT}
    return {
        "jobs_first": (f"{UI}?limit={LIMIT}", f"{API}?limit={LIMIT}"),
        "jobs_filtered": (f"{UI}?{urlencode(filtered)}", f"{API}?{urlencode(filtered)}"),
        "jobs_metadata": (f"{UI}?{urlencode(tenant)}", f"{API}?{urlencode(tenant)}"),
        "jobs_cursor": (
            f"{UI}?{urlencode({'limit': LIMIT, 'cursor': cursor})}",
            f"{API}?{urlencode({'limit': LIMIT, 'cursor': cursor, 'count': 'false'})}",
        ),
        "overview": ("/ui", "/api/v1/queues"),
    }


def _checked(chute: Server, console: str, api: str) -> dict[str, Any]:
    """Both answer 200, and the console shows every job the API lists (a jobs page)."""
    status, html = request(chute, "GET", console)
    if status != 200:
        raise RuntimeError(f"GET {console}: {status} {html[:500]!r}")
    answer = get_json(chute, api)
    if "items" in answer and api.startswith(API):
        missing = [job["id"] for job in answer["items"] if job["id"].encode() not in html]
        if missing or not answer["items"]:
            raise RuntimeError(f"GET {console} does not show {len(missing)} jobs of {api}")
    return {"html_bytes": len(html), "items": len(answer.get("items", []))}


def _alternated(
    ctx: Context, chute: Server, folder: Path, console: str, api: str, profile: str | None
) -> dict[str, Any]:
    """Each side `rounds` times, alternating (console first in even rounds); every run."""
    runs: dict[str, list[dict[str, Any]]] = {"console": [], "api": []}
    sides = [("console", console), ("api", api)]
    for number in range(ctx.sizes.rounds):
        for side, target in sides if number % 2 == 0 else sides[::-1]:
            result = loaded(
                chute,
                target,
                folder,
                connections=1,
                seconds=ctx.sizes.list_seconds,
                warmup=1 if number == 0 else 0.5,
                profile=profile if side == "console" and number == 0 else None,
            )
            runs[side].append(result.as_json())
    return runs


# -- figures -------------------------------------------------------------------------------


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the lowest p50 (the least disturbed by other processes)."""
    return min(runs, key=lambda run: float(run["p50_ms"]))


def figures_of(results: dict[str, Any]) -> list[Figure]:
    figures = []
    for key, result in results.items():
        for case, found in result["cases"].items():
            console, api = best(found["console"]), best(found["api"])
            overview = case == "overview"
            baseline = "GET /api/v1/queues p50" if overview else "API list p50"
            note = (
                f"p99 {console['p99_ms']:.2f} ms (API {api['p99_ms']:.2f}); "
                f"p50s {_p50s(found['console'])} vs {_p50s(found['api'])}; "
                f"server CPU {_cpu(found['console'])} vs {_cpu(found['api'])} ms/request; "
                f"{found['html_bytes']} bytes of HTML"
            )
            figures.append(
                Figure(
                    f"console.{key}.{case}",
                    console["p50_ms"],
                    "ms p50",
                    api["p50_ms"],
                    baseline,
                    OVERVIEW_MS if overview else AT_MOST_TWICE,
                    note=note,
                )
            )
        figures.append(
            Figure(
                f"console.{key}.load",
                result["load_seconds"],
                "s",
                note=f"{result['rows']:,} jobs bulk-loaded (bench.bulk)",
            )
        )
    return figures


def _p50s(runs: list[dict[str, Any]]) -> str:
    return "/".join(f"{run['p50_ms']:.1f}" for run in runs)


def _cpu(runs: list[dict[str, Any]]) -> str:
    """The server's least CPU per request over the rounds: steadier than latency when
    other processes take the cores (one connection: it is most of the server time)."""
    found = [run["cpu_ms_per_request"] for run in runs if run["cpu_ms_per_request"] is not None]
    return f"{min(found):.2f}" if found else "-"
