"""The request-id middleware: one id per request, on every response and every log line.

It is a pure ASGI middleware (not `BaseHTTPMiddleware`, which buffers and breaks
streaming) and the outermost layer of the app, so that it also answers for errors
that escape every handler: such an error is logged with its traceback and answered
with a bare 500 problem that still carries the request id.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from chute.entrypoints.problems import internal_error_response
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

log = structlog.get_logger("chute.http")


def request_id_from(headers: Headers) -> str:
    """The client's request id when it is well formed, else a new one."""
    incoming = headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _VALID_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each HTTP request an id, binds it for logging, and logs one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope))
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("http.unhandled_error")
                if response_started:
                    raise  # too late for a problem response: let the server drop it
                await internal_error_response(Request(scope), request_id)(
                    scope, receive, send_with_id
                )
            finally:
                log.info(
                    "http.request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                )
