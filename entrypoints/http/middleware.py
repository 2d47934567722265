"""The request-id middleware: one id per request, on every response and every log line.

It is a pure ASGI middleware (not `BaseHTTPMiddleware`, which buffers and breaks
streaming) and the outermost layer of the app, so that it also answers for errors
that escape every handler: such an error is logged with its traceback and answered
with a bare 500 problem that still carries the request id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time

import structlog
from chute.entrypoints.http.problems import (
    HeadersTooLarge,
    handle_chute_error,
    internal_error_response,
)
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

log = structlog.get_logger("chute.http")
_http_log = logging.getLogger("chute.http")


def request_id_from(headers: Headers) -> str:
    """The client's request id when it is well formed, else a new one: 32 random hex
    digits, as a uuid4's. Not a secret, so not from the system's CSPRNG, whose call per
    request cost more than the rest of this middleware."""
    incoming = headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _VALID_ID.match(incoming):
        return incoming
    return f"{random.getrandbits(128):032x}"


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
                # Checked first on the standard library's logger (structlog's filter asks it
                # the same), so that a level above INFO costs no line at all.
                if _http_log.isEnabledFor(logging.INFO):
                    log.info(
                        "http.request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    )


def head_size(scope: Scope) -> int:
    """About how many bytes the request line and headers took on the wire."""
    line = len(scope["method"]) + len(scope.get("raw_path") or scope["path"].encode()) + 12
    query = scope.get("query_string", b"")
    headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
    return line + (len(query) + 1 if query else 0) + headers + 2


class HeaderLimitMiddleware:
    """431 for a request whose line and headers exceed `max_bytes`.

    The server (h11) refuses a head that is still incomplete past that size, but takes
    a longer one that arrives whole in one read (up to 256 KiB); this makes the limit
    exact, and answers it as a problem.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and head_size(scope) > self.max_bytes:
            detail = f"The request line and headers may hold at most {self.max_bytes} bytes."
            response = await handle_chute_error(Request(scope), HeadersTooLarge(detail))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _declared_length(scope: Scope) -> int | None:
    """The body length the request declares (0 without a body); None when chunked."""
    headers = Headers(scope=scope)
    if "transfer-encoding" in headers:
        return None
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return None


class CloseUnreadBodyMiddleware:
    """A response that starts before the request body was read to its end (a 401, a
    431, a 413) first reads and drops the rest of a body of at most `DRAIN_BYTES`, for at
    most `DRAIN_SECONDS`, so that the client, still sending, then reads the answer and
    may reuse the connection; a longer or slower body makes it ask the server to close
    the connection instead.

    Without it the server keeps such a connection for the next request while the client
    is still sending the refused body: it buffers 64 KiB of it, stops reading, and the
    connection hangs until the client gives up. (Closing at once instead would reset
    the connection under a client still sending, which then loses the answer.)
    """

    DRAIN_BYTES = 2 * 1024 * 1024
    DRAIN_SECONDS = 2.0

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _declared_length(scope) if scope["type"] == "http" else 0
        if declared == 0:
            await self.app(scope, receive, send)
            return
        received, ended = 0, False

        async def receive_counting() -> Message:
            nonlocal received, ended
            message = await receive()
            received += len(message.get("body", b""))
            ended = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def drained() -> bool:
            if declared is not None and declared > self.DRAIN_BYTES:
                return False  # not worth reading: close at once
            try:
                async with asyncio.timeout(self.DRAIN_SECONDS):
                    while not ended and received < self.DRAIN_BYTES:
                        await receive_counting()
            except TimeoutError:
                return False
            return ended

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not ended and not await drained():
                MutableHeaders(scope=message)["Connection"] = "close"
            await send(message)

        await self.app(scope, receive_counting, send_closing)
