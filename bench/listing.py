"""`list`: GET /api/v1/jobs latency on 10,000 (and, with --full, 1,000,000) bulk-loaded jobs.

Cases, each a fixed URL sent by one connection back to back (p50/p99 by wrk):
first page (with and without `count`), a filtered page (status=pending&mime_type=
image/*, with and without `count`), a keyset page from a cursor half-way through the
set, and the page-number page half-way through (a deep OFFSET). Metadata filters:
one tenant of the 7 `job_rows` spreads jobs over (1 job in 7, with and without
`count`), and that tenant in one batch of 1,000 jobs half-way through the set (about
143 jobs, at any size). Baseline: the no-op
app parsing the same query with `JobListQuery` and answering the same bytes chute
answered, measured right before chute on each case. A Python client also walks
`walk_pages` pages by `next_cursor` from the half-way point (baseline: the same
client re-reading one page of the same size from the no-op app).

The first page (50 jobs, counted) at the smallest size has a second baseline: the
raw parts (`bench/list_raw_app.py`: chute's own statements through the raw driver,
the rows written by orjson in a bare ASGI app on chute's server options), loaded the
same way (before the no-op app and chute), once its answer is checked to be chute's.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.bulk import load_postgres, load_sqlite
from bench.core import Context, Figure, Target, recorded
from bench.data import TENANTS
from bench.listing_figures import figures_of, rows_name
from bench.postgres import fresh_database
from bench.procs import Server, chute_server, list_raw_server, migrate, noop_server
from bench.runs import capture, get_json, loaded, request

PATH = "/api/v1/jobs"
DATABASES = ("sqlite", "postgres")
AT_MOST_TWICE = Target("ratio", "<=", 2.0)
RAW_PARTS_CASE = "first"  # a 50-job page with `total`: issue 16's figure


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("list", ctx) as data:
        folder = Path(tmp)
        results: dict[str, Any] = data.setdefault("results", {})
        with noop_server(folder, folder / "canned") as noop:
            for rows in ctx.sizes.list_rows:
                for database in DATABASES:
                    key = f"{database}.{rows_name(rows)}"
                    print(f"   {key}: loading", flush=True)
                    results[key] = _one(ctx, folder, noop, database, rows)
        figures = figures_of(results, ctx.sizes.list_rows, AT_MOST_TWICE)
        data["figures"] = figures
        return figures


def _one(ctx: Context, folder: Path, noop: Server, database: str, rows: int) -> dict[str, Any]:
    url, load_seconds = _prepared(ctx, folder, database, rows)
    out: dict[str, Any] = {"rows": rows, "load_seconds": round(load_seconds, 1), "cases": {}}
    canned = folder / "canned"
    raw_parts = rows == min(ctx.sizes.list_rows)
    # A storage per database: each one has an id of its own, and a storage belongs to one.
    with chute_server(folder, url, folder / f"storage-{database}-{rows}") as chute:
        for case, target in cases(chute, rows).items():
            body = capture(chute, canned, "GET", target, None)
            measured: dict[str, Any] = {}
            if raw_parts and case == RAW_PARTS_CASE:
                # Up only for its case: no idle process (nor connection) beside the others.
                with list_raw_server(folder, url) as raw:
                    measured["raw_bytes"] = check_same_page(body, raw, target)
                    measured[raw.name] = _measured(ctx, raw, target, folder)
            for server in (noop, chute):
                measured[server.name] = _measured(ctx, server, target, folder)
            out["cases"][case] = {"target": target, "bytes": len(body), **measured}
        out["walk"] = _walks(chute, noop, canned, rows, ctx.sizes.walk_pages)
    return out


def _measured(ctx: Context, server: Server, target: str, folder: Path) -> dict[str, Any]:
    """`target` loaded on one connection (a warm-up second, then the measured run)."""
    result = loaded(server, target, folder, connections=1, seconds=ctx.sizes.list_seconds, warmup=1)
    return result.as_json()


def check_same_page(answer: bytes, raw: Server, target: str) -> int:
    """Check that the raw parts answer chute's page: the same fields and values, but for
    the opaque `next_cursor`, which need only be there (or null) as chute's is; and
    about as many bytes. Their body's size."""
    status, body = request(raw, "GET", target)
    if status != 200:
        raise RuntimeError(f"raw parts, GET {target}: {status} {body[:500]!r}")
    chute_page, raw_page = json.loads(answer), json.loads(body)
    cursors = chute_page.pop("next_cursor"), raw_page.pop("next_cursor")
    assert (cursors[0] is None) == (cursors[1] is None), f"next_cursor: {cursors}"
    assert raw_page == chute_page, f"the raw parts' page differs from chute's: {target}"
    assert abs(len(body) - len(answer)) <= len(answer) // 20, (len(body), len(answer))
    return len(body)


def _prepared(ctx: Context, folder: Path, database: str, rows: int) -> tuple[str, float]:
    if database == "sqlite":
        path = folder / f"list-{rows}.db"
        return f"sqlite+aiosqlite:///{path}", load_sqlite(str(path), rows)
    url = asyncio.run(fresh_database(ctx.postgres(), f"bench_list_{rows}"))
    seconds = asyncio.run(load_postgres(url, rows))
    migrate(url)  # a no-op: the loader migrated; as a deployment would run it
    return url, seconds


def cases(chute: Server, rows: int) -> dict[str, str]:
    """The URL of each case; the half-way cursor comes from chute (a 1-job page there)."""
    half = rows // 2
    start = get_json(chute, f"{PATH}?{urlencode({'page': half, 'limit': 1, 'count': 'false'})}")
    filtered = {"status": "pending", "mime_type": "image/*"}
    # `job_rows`: tenant TENANTS[n % 7], batch n // 1000; a tenant is 1 job in 7, one of
    # its batches about 143 jobs, wherever it is in the set.
    tenant = {"metadata.tenant": TENANTS[1]}
    batch = {**tenant, "metadata.batch": str(half // 1000)}
    return {
        "first": PATH,
        "first_nocount": f"{PATH}?count=false",
        "filtered": f"{PATH}?{urlencode(filtered)}",
        "filtered_nocount": f"{PATH}?{urlencode({**filtered, 'count': 'false'})}",
        "cursor_deep": f"{PATH}?{urlencode({'count': 'false', 'cursor': start['next_cursor']})}",
        "offset_deep": f"{PATH}?{urlencode({'count': 'false', 'page': half // 50})}",
        "metadata": f"{PATH}?{urlencode(tenant)}",
        "metadata_nocount": f"{PATH}?{urlencode({**tenant, 'count': 'false'})}",
        "metadata_two_nocount": f"{PATH}?{urlencode({**batch, 'count': 'false'})}",
    }


def _walks(chute: Server, noop: Server, canned: Path, rows: int, pages: int) -> dict[str, Any]:
    first = cases(chute, rows)["cursor_deep"]
    capture(chute, canned, "GET", first, None)
    return {
        "chute": walk(chute, first, pages, follow=True),
        "noop": walk(noop, first, pages, follow=False),
    }


def walk(server: Server, target: str, pages: int, *, follow: bool) -> dict[str, Any]:
    """Read `pages` pages on one keep-alive connection, following `next_cursor` if `follow`."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    latencies, items = [], 0
    try:
        for _ in range(pages):
            started = time.perf_counter()
            conn.request("GET", target)
            response = conn.getresponse()
            page = json.loads(response.read())
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {target}: {response.status} {page}")
            items += len(page["items"])
            if follow:
                if not page["next_cursor"]:
                    break
                target = f"{PATH}?{urlencode({'count': 'false', 'cursor': page['next_cursor']})}"
    finally:
        conn.close()
    return {
        "pages": len(latencies),
        "items": items,
        "p50_ms": statistics.median(latencies),
        "max_ms": max(latencies),
        "seconds": sum(latencies) / 1000,
    }
