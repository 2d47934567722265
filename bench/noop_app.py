"""The baseline server: chute's routes with nothing behind them.

It parses each request exactly as chute does (the same Pydantic models:
`JobCreateRequest`, `BatchCreateRequest`, `JobListQuery`, on FastAPI) and answers
with canned bytes: the body chute itself gave to the same request earlier in the
run, so that both send responses of the same size. No storage, no middleware, no
logging of its own. It runs through `chute serve` itself (`main` swaps the app), so
the uvicorn options and the logging set-up are chute's.

The canned bodies are files in `$BENCH_CANNED_DIR`, named by `canned_name(method,
target)`; the benchmark writes them before it sends load here. A request with no
canned body gets a 500, which the load generators count as errors.

    python -m bench.noop_app --port 8001
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path
from typing import Annotated

from chute.entrypoints.http.schemas.jobs import BatchCreateRequest, JobCreateRequest, JobListQuery
from fastapi import FastAPI, Query, Request, Response

CANNED = Path(os.environ.get("BENCH_CANNED_DIR", "."))
_bodies: dict[str, bytes] = {}


def canned_name(method: str, target: str) -> str:
    """The file name of the canned body for `method` on `target` (path and query)."""
    return hashlib.sha1(f"{method} {target}".encode()).hexdigest() + ".json"


def _answer(request: Request, status_code: int) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    name = canned_name(request.method, target)
    body = _bodies.get(name)
    if body is None:
        try:
            body = _bodies[name] = (CANNED / name).read_bytes()
        except OSError:
            return Response(b"no canned body", status_code=500)
    return Response(body, status_code=status_code, media_type="application/json")


app = FastAPI(title="chute no-op baseline")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/jobs", status_code=201)
async def create_job(body: JobCreateRequest, request: Request) -> Response:
    response = _answer(request, 201)
    response.headers["Location"] = "/api/v1/jobs/0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41"
    return response


@app.post("/api/v1/jobs/batch", status_code=201)
async def create_jobs(body: BatchCreateRequest, request: Request) -> Response:
    return _answer(request, 201)


@app.get("/api/v1/jobs")
async def list_jobs(query: Annotated[JobListQuery, Query()], request: Request) -> Response:
    return _answer(request, 200)


def main() -> int:
    """Serve `app` through `chute serve` itself, so that every uvicorn option (and the
    logging set-up) is chute's, whatever they become: only the app is swapped."""
    from chute.entrypoints import cli
    from chute.entrypoints.cli import serve

    async def unchecked(settings: object) -> None:
        return None  # no database and no storage to check

    parser = argparse.ArgumentParser(prog="python -m bench.noop_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    # The names `chute serve` runs with, in its own module.
    serve.check_storage = unchecked
    serve.build_container = lambda settings: None  # nothing to connect to
    serve.create_app = lambda container=None: app
    # Not SQLite, so that `serve` migrates nothing; no connection is ever made.
    os.environ["CHUTE_DATABASE_URL"] = "postgresql+asyncpg://noop@127.0.0.1:9/none"
    return int(cli.main(["serve", "--host", args.host, "--port", str(args.port)]))


if __name__ == "__main__":
    raise SystemExit(main())
