"""JSON request bodies: their media type, and a size limit answered as `payload-too-large`.

FastAPI reads a JSON body whole before validating it. Routes of `BodyLimitedRoute`
declare their limit as the OpenAPI extension `x-max-body-bytes`, so that clients
see it too. (FastAPI's own `max_body_size` answers with a plain-text 413 that no
exception handler can turn into a problem.) Their body must be declared as JSON: both
checks run before a byte of the body is read, in the route itself rather than as a
FastAPI dependency (each of which costs a request a few percent of its CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from chute.application import PayloadTooLarge, UnsupportedMediaType
from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.types import Message

LIMIT_KEY = "x-max-body-bytes"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body may hold at most {limit} bytes.")


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (FastAPI would read it as bytes and fail
    with a confusing "valid dictionary" error)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("The body must be sent as application/json.")


def _declared_length(request: Request) -> int | None:
    try:
        return int(request.headers["content-length"])
    except (KeyError, ValueError):
        return None


class BodyLimitedRoute(APIRoute):
    """A route that refuses a body over its `x-max-body-bytes`, or not declared as JSON,
    before reading it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        limit = (self.openapi_extra or {}).get(LIMIT_KEY)
        if limit is None:
            return handler

        async def limited_handler(request: Request) -> Response:
            declared = _declared_length(request)
            if declared is not None and declared > limit:
                raise too_large(limit)
            require_json(request)
            received = 0

            async def receive() -> Message:
                nonlocal received
                message = await request.receive()
                received += len(message.get("body", b""))
                if received > limit:  # a chunked body that grows past the limit
                    raise too_large(limit)
                return message

            return await handler(Request(request.scope, receive))

        return limited_handler
