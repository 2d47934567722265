"""RFC 9457 problem responses: every error of the HTTP API, mapped in one table."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from chute.application.errors import (
    ContentNotFound,
    FieldError,
    IdempotencyConflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InsufficientStorage,
    InvalidCursor,
    JobNotFound,
    PayloadTooLarge,
    QueueNotFound,
    ScheduleNotFound,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
    WebhookNotFound,
)
from chute.domain.errors import InvalidTransition, InvalidValue, LeaseNotHeld
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("chute.http")


class Unauthorized(Exception):
    """No valid API key (answered by the auth middleware, before any route)."""


class HeadersTooLarge(Exception):
    """The request line and headers exceed CHUTE_MAX_HEADER_BYTES."""


# exception -> (status, type, title). Subclasses not listed here are 500s.
PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    ValidationFailed: (422, "validation-error", "Validation failed"),
    InvalidCursor: (422, "validation-error", "Validation failed"),
    InvalidValue: (422, "validation-error", "Validation failed"),
    JobNotFound: (404, "job-not-found", "Job not found"),
    ContentNotFound: (404, "content-not-found", "Content not found"),
    QueueNotFound: (404, "queue-not-found", "Queue not found"),
    ScheduleNotFound: (404, "schedule-not-found", "Schedule not found"),
    WebhookNotFound: (404, "webhook-not-found", "Webhook not found"),
    InvalidTransition: (409, "invalid-transition", "Invalid status transition"),
    LeaseNotHeld: (409, "lease-not-held", "Lease not held"),
    IdempotencyKeyInUse: (409, "idempotency-key-in-use", "Idempotency key in use"),
    IdempotencyConflict: (409, "idempotency-key-in-use", "Idempotency key in use"),
    IdempotencyKeyReused: (422, "idempotency-key-reused", "Idempotency key reused"),
    PayloadTooLarge: (413, "payload-too-large", "Payload too large"),
    UnsupportedMediaType: (415, "unsupported-media-type", "Unsupported media type"),
    ServiceUnavailable: (503, "service-unavailable", "Service unavailable"),
    InsufficientStorage: (507, "insufficient-storage", "Insufficient storage"),
    ClientDisconnect: (400, "bad-request", "Bad request"),
    Unauthorized: (401, "unauthorized", "Unauthorized"),
    HeadersTooLarge: (431, "request-header-fields-too-large", "Request header fields too large"),
}
# Their messages may come from drivers or the file system: keep them in the log only.
_FIXED_DETAIL = {
    ServiceUnavailable: "The database or the storage cannot be reached; try again later.",
    InsufficientStorage: "The storage folder is full.",
    ClientDisconnect: "The client closed the connection before the request body ended.",
}
_HTTP_TYPES = {404: "not-found", 405: "method-not-allowed"}
_HTTP_DETAILS = {
    404: "Nothing is served at {path}.",
    405: "{path} does not accept {method}; the Allow header lists what it does.",
}


def problem(
    request: Request, status: int, type: str, title: str, detail: str, **extra: Any
) -> JSONResponse:
    """A problem response for `request`, with its path as `instance` and its request id."""
    body = {
        "type": type,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request.scope.get("state", {}).get("request_id"),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def internal_error_response(request: Request, request_id: str) -> JSONResponse:
    """The 500 answer: no trace, SQL or path; the request id finds them in the log."""
    request.scope.setdefault("state", {})["request_id"] = request_id
    return problem(request, detail=_INTERNAL_DETAIL, **_INTERNAL)


_INTERNAL: dict[str, Any] = {
    "status": 500,
    "type": "internal-error",
    "title": "Internal server error",
}
_INTERNAL_DETAIL = "An unexpected error occurred; the request id identifies it in the server log."


# -- validation errors ---------------------------------------------------------------------


class LocatedValidationFailed(ValidationFailed):
    """`ValidationFailed` whose locs already name the part of the request (body, query...)."""


@contextmanager
def errors_located_at(*prefix: str | int) -> Iterator[None]:
    """Prefix the locs of the engine's `ValidationFailed` with where the input came from."""
    try:
        yield
    except LocatedValidationFailed:
        raise
    except ValidationFailed as exc:
        raise located_at(exc, *prefix) from exc


def located_at(exc: ValidationFailed, *prefix: str | int) -> LocatedValidationFailed:
    """`exc` with `prefix` before the loc of each of its errors."""
    return LocatedValidationFailed(
        [FieldError((*prefix, *e.loc), e.msg, e.type) for e in exc.errors]
    )


def _validation_problem(request: Request, errors: Sequence[dict[str, Any]]) -> JSONResponse:
    count = len(errors)
    detail = f"The request has {count} invalid value{'s' if count != 1 else ''}."
    status, type, title = PROBLEMS[ValidationFailed]
    return problem(request, status, type, title, detail, errors=[_writable(e) for e in errors])


def _writable(error: dict[str, Any]) -> dict[str, Any]:
    """`error` with any surrogate in its loc (an unknown key of the client's, named back)
    or its msg escaped as `\\udXXX`: no UTF-8 JSON could carry it, and the answer would
    be a 500 instead."""
    loc = [_escaped(part) if isinstance(part, str) else part for part in error["loc"]]
    return error | {"loc": loc, "msg": _escaped(error["msg"])}


def _escaped(text: str) -> str:
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _field_errors(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, InvalidCursor):
        return [{"loc": ["query", "cursor"], "msg": str(exc), "type": "value_error"}]
    if isinstance(exc, InvalidValue):
        return [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
    assert isinstance(exc, ValidationFailed)
    default = () if isinstance(exc, LocatedValidationFailed) else ("body",)
    return [{"loc": [*default, *e.loc], "msg": e.msg, "type": e.type} for e in exc.errors]


def _clean(error: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's error without `input`/`ctx`, which may hold huge or non-JSON values."""
    msg = str(error.get("msg", "")).removeprefix("Value error, ")
    reason = (error.get("ctx") or {}).get("error")
    if error.get("type") == "json_invalid" and isinstance(reason, str):
        msg = f"{msg}: {reason}"
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    return {"loc": loc, "msg": msg, "type": str(error.get("type", "value_error"))}


# -- handlers ------------------------------------------------------------------------------


async def handle_chute_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer an application or domain error with its row of `PROBLEMS`."""
    return problem(request, **problem_members(exc))


def problem_members(exc: Exception) -> dict[str, Any]:
    """The type, title, status and detail (and a validation error's `errors`) of the
    problem that answers `exc`: its row of `PROBLEMS`, else an internal error."""
    kind = next((k for k in type(exc).__mro__ if k in PROBLEMS), None)
    if kind is None:
        return {**_INTERNAL, "detail": _INTERNAL_DETAIL}
    status, type_, title = PROBLEMS[kind]
    if type_ == "validation-error":
        errors = _field_errors(exc)
        count = len(errors)
        detail = f"The request has {count} invalid value{'s' if count != 1 else ''}."
        return {
            "type": type_,
            "title": title,
            "status": status,
            "detail": detail,
            "errors": [_writable(e) for e in errors],
        }
    if kind in _FIXED_DETAIL:
        log.warning("http.unavailable", extra={"error": repr(exc)})
        return {"type": type_, "title": title, "status": status, "detail": _FIXED_DETAIL[kind]}
    return {"type": type_, "title": title, "status": status, "detail": str(exc)}


async def handle_request_validation(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own validation errors (body, query, path, header) as a problem."""
    assert isinstance(exc, RequestValidationError)
    return _validation_problem(request, [_clean(error) for error in exc.errors()])


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (unknown route, wrong method) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, tuple(PROBLEMS)):
        # FastAPI wraps whatever fails while it reads a body (a body limit, a client
        # that went away) in a 400: answer for the error itself.
        assert isinstance(cause, Exception)
        return await handle_chute_error(request, cause)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot even decode (not UTF-8): answered as
        # every other unreadable JSON body is, so that clients see one rule.
        error = {"loc": ["body"], "msg": "the body is not valid JSON", "type": "json_invalid"}
        return _validation_problem(request, [error])
    phrase = HTTPStatus(exc.status_code).phrase
    type_ = _HTTP_TYPES.get(exc.status_code, phrase.lower().replace(" ", "-"))
    template = _HTTP_DETAILS.get(exc.status_code)
    detail = (
        template.format(method=request.method, path=request.url.path)
        if template
        else str(exc.detail)
    )
    response = problem(request, exc.status_code, type_, phrase, detail)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        response.headers["Allow"] = allowed
    return response


def _allowed_methods(request: Request) -> str:
    """The methods the OpenAPI description gives the path that answered 405.

    Starlette's `Allow` names the methods of the first route whose path matches only,
    so `OPTIONS /api/v1/jobs` would seem to allow POST and not GET. As in OpenAPI, a
    concrete path wins over a templated one (`/jobs/claim` over `/jobs/{job_id}`).
    """
    fitting = [
        (template.count("{"), item)
        for template, item in request.app.openapi().get("paths", {}).items()
        if _fits(template, request.url.path)
    ]
    if not fitting:
        return ""
    _, item = min(fitting, key=lambda pair: pair[0])
    return ", ".join(method.upper() for method in item if method in _HTTP_METHODS)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _fits(template: str, path: str) -> bool:
    """Whether `path` is an instance of the OpenAPI path `template` (`/jobs/{job_id}`)."""
    parts, segments = template.split("/"), path.split("/")
    return len(parts) == len(segments) and all(
        part == segment or (part.startswith("{") and part.endswith("}") and segment != "")
        for part, segment in zip(parts, segments, strict=True)
    )


def register_problem_handlers(app: FastAPI) -> None:
    """Make every error the app knows a problem response (the rest are 500s, answered
    by the request-id middleware)."""
    for kind in PROBLEMS:
        app.add_exception_handler(kind, handle_chute_error)
    app.add_exception_handler(RequestValidationError, handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
