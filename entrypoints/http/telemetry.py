"""The HTTP side of telemetry: per request, a count and a duration by route template,
and a server span continuing the caller's `traceparent` when tracing is on.

A pure ASGI middleware, just inside the request-id one, so that refusals (401, 431)
are counted too. Routes are labelled by their template (`/api/v1/jobs/{job_id}`),
never by the raw path: a label per job id would grow without bound. A request that
matches no route (a 404 of an unknown path) is labelled `UNMATCHED`, one label for all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from chute.adapters.telemetry import ChuteTelemetry
from chute.adapters.telemetry.otel import mark_error
from chute.entrypoints.bootstrap import Container, settled
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED = "(unmatched)"


def route_label(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The template of the route that served the request, or that would have served it
    when it was refused before routing (401, 431); `UNMATCHED` when none would."""
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None) or next(
            (r for r in routes if r.matches(scope)[0] is Match.PARTIAL), None
        )
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class TelemetryMiddleware:
    """Counts and times each HTTP request; traces it when the telemetry traces."""

    def __init__(self, app: ASGIApp, container: Container, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.container = container
        self.routes = routes  # the app's routes, each with its whole path
        self.telemetry: ChuteTelemetry | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.telemetry is None:  # built with the engine, on the first request
            self.telemetry = await settled(self.container.telemetry())
        telemetry = self.telemetry
        if telemetry.metrics is None and telemetry.tracing is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what an error escaping the app becomes (RequestIdMiddleware)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        if telemetry.tracing is None:
            try:
                await self.app(scope, receive, send_status)
            finally:
                elapsed = time.perf_counter() - started
                telemetry.http_request(method, route_label(scope, self.routes), status, elapsed)
            return
        with telemetry.tracing.server_span(method, Headers(scope=scope)) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_label(scope, self.routes)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                mark_error(span, status)
                telemetry.http_request(method, route, status, time.perf_counter() - started)
