"""The FastAPI application: `create_app()` serves a container's engine over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from chute.entrypoints import routes_health, routes_jobs, routes_upload, routes_workers
from chute.entrypoints.auth import ApiKeyMiddleware
from chute.entrypoints.container import Container, build_container, settled
from chute.entrypoints.keys import KeyRing
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.maintenance import maintaining
from chute.entrypoints.middleware import (
    CloseUnreadBodyMiddleware,
    HeaderLimitMiddleware,
    RequestIdMiddleware,
)
from chute.entrypoints.openapi import declare_bearer_auth, serve_problems_as_problem_json
from chute.entrypoints.problems import register_problem_handlers
from chute.entrypoints.settings import Settings
from fastapi import FastAPI
from fastapi.routing import APIRoute

# Workers first: a wrong method on `/api/v1/jobs/claim` then answers 405 with
# `Allow: POST` (Starlette names the methods of the first route whose path matches)
# rather than the `Allow: GET` of `/api/v1/jobs/{job_id}`.
ROUTE_MODULES = (routes_workers, routes_jobs, routes_upload, routes_health)

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
  1 MiB (`POST /jobs`), 64 MiB (`POST /jobs/batch`), 8 MiB (`POST /jobs/{id}/complete`)
  or 64 KiB (the other worker calls), given as `x-max-body-bytes` (else 413).
  `metadata` and `result` must be plain JSON: no `NaN`/`Infinity`, at most 64 levels deep.
* Text no database stores is refused wherever it is sent (422 `validation-error` naming
  the field, on every database alike): the NUL character (U+0000) and unpaired
  surrogates (a JSON `\\ud800` escape without its pair), in any string, `metadata` or
  `result` key or value, query value, header, form field or file name (a file name
  that is not UTF-8, too).
* Numbers and flags of worker calls are strict: `"5"` is not a `limit`, `1` is not a
  `retryable`. The claim filters `mode` and `source_type` take one value or a list.
* `POST /api/v1/jobs/claim` is the only method of that path; `GET` or `DELETE` there
  read `claim` as a job id and answer 422 (not a UUID).
* Worker calls on an unknown job answer 404 `job-not-found` before any lease check.
* `GET /api/v1/jobs` refuses unknown query parameters (422, `extra_forbidden`), as
  bodies refuse unknown fields, so that a misspelt filter never lists every job.
* Every response carries `X-Request-ID`.
* With CHUTE_API_KEYS set, every `/api/v1` route asks for `Authorization: Bearer <key>`
  (401 `unauthorized` otherwise; a key in the query string is refused, never read).
* The request line and headers may hold at most CHUTE_MAX_HEADER_BYTES (16 KiB):
  431 `request-header-fields-too-large` above.
"""


DEFAULT_MAX_HEADER_BYTES = 16 * 1024


def _version() -> str:
    try:
        return version("chute")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the container's resources (the database engine) for the app's lifetime, and
    rescue expired leases and sweep orphan files meanwhile (unless turned off)."""
    container: Container = app.state.container
    await settled(container.init_resources())
    try:
        if app.state.maintenance:
            async with maintaining(container):
                yield
        else:
            yield
    finally:
        await settled(container.shutdown_resources())


def _operation_id(route: APIRoute) -> str:
    return route.name  # every route also sets `operation_id` explicitly


def create_app(container: Container | None = None, *, maintenance: bool = True) -> FastAPI:
    """The HTTP service on `container` (one built from the environment when not given).

    With `maintenance` (the default), the app takes back jobs whose lease ended and
    sweeps orphan files while it runs; tests that move jobs and clocks by hand turn it
    off. Routes reach the engine through `request_engine`, which reads the container
    kept on `app.state`: several apps may live in one process.
    """
    if container is None:
        settings = Settings()
        configure_logging(settings.log_format, settings.log_level)
        container = build_container(settings)
    app = FastAPI(
        title="chute",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.container = container
    app.state.maintenance = maintenance
    for module in ROUTE_MODULES:
        app.include_router(module.router)
    register_problem_handlers(app)
    serve_problems_as_problem_json(app)
    _add_middleware(app, container)
    return app


def _add_middleware(app: FastAPI, container: Container) -> None:
    """Innermost first: the key check, the header limit, closing connections whose
    body is refused unread, and the request id outermost, so that every refusal
    carries an X-Request-ID and is logged like any request."""
    keys = KeyRing.of(container.config.get("api_keys") or ())
    declare_bearer_auth(app, required=keys.enabled)
    if keys.enabled:
        app.add_middleware(ApiKeyMiddleware, keys=keys)
    max_header_bytes = container.config.get("max_header_bytes") or DEFAULT_MAX_HEADER_BYTES
    app.add_middleware(HeaderLimitMiddleware, max_bytes=max_header_bytes)
    app.add_middleware(CloseUnreadBodyMiddleware)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost layer
