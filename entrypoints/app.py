"""The FastAPI application: `create_app()` wires the routes to a container's engine."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from chute.entrypoints import routes_health, routes_jobs, routes_upload
from chute.entrypoints.container import Container, build_container
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.middleware import RequestIdMiddleware
from chute.entrypoints.openapi import serve_problems_as_problem_json
from chute.entrypoints.problems import register_problem_handlers
from chute.entrypoints.settings import Settings
from fastapi import FastAPI
from fastapi.routing import APIRoute

ROUTE_MODULES = (routes_jobs, routes_upload, routes_health)

DESCRIPTION = """
Job orchestration for content pipelines: upload or reference content, detect what it
is, and track it as jobs.

Conventions beyond API.md:

* Every error is `application/problem+json` (RFC 9457) with `type`, `title`, `status`,
  `detail`, `instance` and `request_id`; validation errors add `errors`
  (`[{"loc", "msg", "type"}]`, `loc` starting with `body`, `query`, `path` or `header`).
* A JSON body that does not parse (bad syntax, not UTF-8, nested too deep for the
  parser) is a **422** `validation-error` with `type: json_invalid`, never a 400, so
  that one rule covers every unreadable body; a malformed multipart body is a 422 too.
* JSON bodies must be sent as `application/json` (else 415) and may hold at most
  1 MiB (`POST /jobs`) or 64 MiB (`POST /jobs/batch`), given as `x-max-body-bytes`
  (else 413). `metadata` must be plain JSON: no `NaN`/`Infinity`, at most 64 levels deep.
* `GET /api/v1/jobs` refuses unknown query parameters (422, `extra_forbidden`), as
  bodies refuse unknown fields, so that a misspelt filter never lists every job.
* Every response carries `X-Request-ID`.
"""


def _version() -> str:
    try:
        return version("chute")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


async def _maybe_await(result: object) -> None:
    # dependency-injector returns an awaitable only when some resource is async.
    if inspect.isawaitable(result):
        await result


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the container's resources (the database engine) for the app's lifetime."""
    container: Container = app.state.container
    await _maybe_await(container.init_resources())
    try:
        yield
    finally:
        await _maybe_await(container.shutdown_resources())


def _operation_id(route: APIRoute) -> str:
    return route.name  # every route also sets `operation_id` explicitly


def create_app(container: Container | None = None) -> FastAPI:
    """The HTTP service on `container` (one built from the environment when not given).

    dependency-injector's wiring patches the route modules themselves, so the routes
    serve the container most recently given to `create_app`: one app per process (or,
    in tests, one app at a time).
    """
    if container is None:
        settings = Settings()
        configure_logging(settings.log_format, settings.log_level)
        container = build_container(settings)
    container.wire(modules=list(ROUTE_MODULES))
    app = FastAPI(
        title="chute",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.container = container
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    register_problem_handlers(app)
    serve_problems_as_problem_json(app)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost layer
    return app
