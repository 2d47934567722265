"""The FastAPI application: `create_app()` serves a container's engine over HTTP."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from chute.entrypoints.bootstrap import Container, build_container, chute_version, settled
from chute.entrypoints.http import docs
from chute.entrypoints.http.auth import ApiKeyMiddleware
from chute.entrypoints.http.console import Sessions
from chute.entrypoints.http.console import install as install_console
from chute.entrypoints.http.keys import KeyRing
from chute.entrypoints.http.maintenance import maintaining
from chute.entrypoints.http.middleware import (
    CloseUnreadBodyMiddleware,
    HeaderLimitMiddleware,
    RequestIdMiddleware,
)
from chute.entrypoints.http.openapi import describe
from chute.entrypoints.http.problems import register_problem_handlers
from chute.entrypoints.http.routes import (
    health,
    jobs,
    metrics,
    queues,
    schedules,
    stream,
    upload,
    webhooks,
    workers,
)
from chute.entrypoints.http.routing import wrong_methods
from chute.entrypoints.http.stream import event_feed
from chute.entrypoints.http.telemetry import TelemetryMiddleware
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.settings import Settings
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

# Workers first, so that the description lists `/api/v1/jobs/claim` before the
# `/api/v1/jobs/{job_id}` routes.
ROUTE_MODULES = (workers, jobs, upload, queues, schedules, stream, webhooks, health, metrics, docs)

DESCRIPTION = """
Job orchestration for content pipelines: upload or reference content, detect what it
is, and track it as jobs.

Conventions:

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
* A method that a path does not take answers 405 `method-not-allowed` with an `Allow`
  header naming those it takes (`GET /api/v1/jobs/claim` too: `claim` is no job id).
* Times are RFC 3339 in UTC with a `Z` and microseconds (`2026-11-29T19:11:35.123456Z`);
  ids are UUIDs (UUIDv7, so that they sort by creation time).
* Worker calls on an unknown job answer 404 `job-not-found` before any lease check.
* `GET /api/v1/jobs` refuses unknown query parameters (422, `extra_forbidden`), as
  bodies refuse unknown fields, so that a misspelt filter never lists every job.
* Every response carries `X-Request-ID`.
* With CHUTE_API_KEYS set, every `/api/v1` route asks for `Authorization: Bearer <key>`
  (401 `unauthorized` otherwise; a key in the query string is refused, never read).
  Without it the API is open (the default, bound to 127.0.0.1) and a key is optional.
  `/healthz`, `/readyz`, `/docs`, `/redoc` and `/openapi.json` never ask for one;
  `/metrics` does, as the `/api/v1` routes.
* The request line and headers may hold at most CHUTE_MAX_HEADER_BYTES (16 KiB):
  431 `request-header-fields-too-large` above.
"""


DEFAULT_MAX_HEADER_BYTES = 16 * 1024


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the container's resources (the database engine) for the app's lifetime, follow
    the live feed for its streams, and do the background duties meanwhile (rescue, sweep,
    schedules; unless turned off)."""
    container: Container = app.state.container
    await settled(container.init_resources())
    try:
        app.state.feed = await event_feed(container)
        following = asyncio.create_task(app.state.feed.run(), name="chute-feed")
        try:
            if app.state.maintenance:
                async with maintaining(container):
                    yield
            else:
                yield
        finally:
            following.cancel()
            await asyncio.wait([following])
    finally:
        await settled(container.shutdown_resources())


def _without_fastapis_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry spans, metrics and logs turned off (FastAPI 0.165 and
    later have them, on by default once opentelemetry is installed): chute makes its
    own (`telemetry`), on a provider of its own, and FastAPI's would double them under a
    global provider, and cost a look at the global providers per request even without."""
    if "telemetry" not in inspect.signature(FastAPI).parameters:
        return {}
    off = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {"telemetry": off}


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
        version=chute_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        docs_url=None,  # served by `docs`, from chute's own files
        redoc_url=None,
        **_without_fastapis_telemetry(),
    )
    app.state.container = container
    app.state.maintenance = maintenance
    routers = [module.router for module in ROUTE_MODULES]
    guard = wrong_methods(routers)
    app.include_router(guard)  # first: a concrete path wins
    for router in routers:
        app.include_router(router)
    keys = KeyRing.of(container.config.get("api_keys") or ())
    install_console(app, _sessions(container, keys))
    register_problem_handlers(app)
    leaves = [route for router in [guard, *routers] for route in router.routes]
    _add_middleware(app, container, leaves, keys)
    return app


def _sessions(container: Container, keys: KeyRing) -> Sessions | None:
    """The console's sign-ins: none when the API asks for no key."""
    if not keys.enabled:
        return None
    secret = container.config.get("session_secret")
    return Sessions(keys, secret.get_secret_value() if secret else None)


def _add_middleware(
    app: FastAPI, container: Container, routes: list[BaseRoute], keys: KeyRing
) -> None:
    """Innermost first: the key check, the header limit, closing connections whose
    body is refused unread, metrics and traces, and the request id outermost, so that
    every refusal carries an X-Request-ID, is logged and counted like any request."""
    describe(app, keys_required=keys.enabled)
    if app.state.console_sessions is not None:
        app.add_middleware(ApiKeyMiddleware, keys=keys, sessions=app.state.console_sessions)
    max_header_bytes = container.config.get("max_header_bytes") or DEFAULT_MAX_HEADER_BYTES
    app.add_middleware(HeaderLimitMiddleware, max_bytes=max_header_bytes)
    app.add_middleware(CloseUnreadBodyMiddleware)
    app.add_middleware(TelemetryMiddleware, container=container, routes=routes)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost layer
