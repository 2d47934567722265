"""Problem responses (RFC 9457) turned back into the errors the engine raises.

One table, `ERRORS`, maps each problem `type` of the HTTP API to the error the engine
raises for it (the inverse of the HTTP adapter's own table), so that code written
against `OrchestrationEngine` catches the same exceptions from a remote chute. Every
error raised here carries the problem: `error.title`, `error.detail`, `error.status`
(`problem_of(error)` reads them from any error, typed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from chute.application import (
    ContentNotFound,
    FieldError,
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
from chute.domain import ChuteError, InvalidTransition, JobStatus, LeaseNotHeld

E = TypeVar("E", bound=ChuteError)

# The parts of a request the server names first in a `loc`; the engine names none.
REQUEST_PARTS = frozenset({"body", "query", "path", "header"})
_TRANSITION = re.compile(r"Job (\S+) is (\w+); it cannot become (\w+)\.")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem as the server answered it."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: tuple[FieldError, ...] = ()
    body: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, status: int, body: object) -> Problem:
        """The problem of an error answer; a body that is not one is described as one."""
        data = body if isinstance(body, dict) else {}
        errors = tuple(
            FieldError(tuple(e.get("loc", ())), e.get("msg", ""), e.get("type", "value_error"))
            for e in data.get("errors") or ()
        )
        return cls(
            type=str(data.get("type", "about:blank")),
            title=str(data.get("title", f"HTTP {status}")),
            status=int(data.get("status", status)),
            detail=str(data.get("detail", "")),
            instance=data.get("instance"),
            request_id=data.get("request_id"),
            errors=errors,
            body=data,
        )


@dataclass(frozen=True, slots=True)
class Context:
    """What the caller knew when it asked: named in the errors it gets back."""

    job_id: UUID | None = None
    worker_id: str | None = None
    queue: str | None = None
    loc_prefix: tuple[str | int, ...] = ()  # stripped from `loc`s (a batch's "jobs")


class RemoteError(ChuteError):
    """A refusal the engine has no error for (unauthorized, forbidden, an unknown
    route, a 500); `title`, `detail` and `status` are the problem's."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.title, self.detail, self.status = problem.title, problem.detail, problem.status


class Unauthorized(RemoteError):
    """The server wants a valid API key (401), or refuses this one (403)."""


def _located(problem: Problem, context: Context) -> list[FieldError]:
    """The problem's field errors with `loc` as the engine writes it."""

    def engine_loc(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
        if loc[:1] and loc[0] in REQUEST_PARTS:
            loc = loc[1:]
        prefix = context.loc_prefix
        return loc[len(prefix) :] if prefix and loc[: len(prefix)] == prefix else loc

    return [FieldError(engine_loc(e.loc), e.msg, e.type) for e in problem.errors]


def _validation(problem: Problem, context: Context) -> ChuteError:
    errors = _located(problem, context)
    if len(errors) == 1 and errors[0].loc == ("cursor",) and "cursor" in errors[0].msg:
        error = InvalidCursor("")
        error.args = (errors[0].msg,)
        return error
    return ValidationFailed(errors)


def _job_id(problem: Problem, context: Context) -> UUID:
    if context.job_id is not None:
        return context.job_id
    found = _UUID.search(problem.detail)
    return UUID(found.group(0)) if found else UUID(int=0)


def _transition(problem: Problem, context: Context) -> ChuteError:
    found = _TRANSITION.fullmatch(problem.detail)
    if found is None:
        return RemoteError(problem)
    current, target = JobStatus(found.group(2)), JobStatus(found.group(3))
    return InvalidTransition(_job_id(problem, context), current, target)


def _queue(problem: Problem, context: Context) -> ChuteError:
    return QueueNotFound(context.queue or "")


def _with_detail(kind: Callable[[str], ChuteError]) -> Callable[[Problem, Context], ChuteError]:
    return lambda problem, _: kind(problem.detail)


# problem type -> the engine's error. A type not listed is a `RemoteError`.
ERRORS: dict[str, Callable[[Problem, Context], ChuteError]] = {
    "validation-error": _validation,
    "job-not-found": lambda p, c: JobNotFound(_job_id(p, c)),
    "content-not-found": lambda p, c: ContentNotFound(_job_id(p, c)),
    "queue-not-found": _queue,
    "schedule-not-found": lambda p, c: ScheduleNotFound(""),
    "webhook-not-found": lambda p, c: WebhookNotFound(_job_id(p, c)),
    "invalid-transition": _transition,
    "lease-not-held": lambda p, c: LeaseNotHeld(_job_id(p, c), c.worker_id or ""),
    "idempotency-key-in-use": lambda p, c: IdempotencyKeyInUse(),
    "idempotency-key-reused": lambda p, c: IdempotencyKeyReused(),
    "payload-too-large": _with_detail(PayloadTooLarge),
    "unsupported-media-type": _with_detail(UnsupportedMediaType),
    "service-unavailable": _with_detail(ServiceUnavailable),
    "insufficient-storage": _with_detail(InsufficientStorage),
    "unauthorized": lambda p, c: Unauthorized(p),
    "forbidden": lambda p, c: Unauthorized(p),
}


NO_CONTEXT = Context()
# What a proxy or load balancer answers when no chute server behind it does.
GATEWAY_AWAY = frozenset({502, 503, 504})


def error_of(problem: Problem, context: Context = NO_CONTEXT) -> ChuteError:
    """The error the engine would have raised for `problem`, carrying the problem."""
    make = ERRORS.get(problem.type)
    if make is None and problem.status in GATEWAY_AWAY:
        make = ERRORS["service-unavailable"]  # a proxy's answer: the server is away
    return _carrying(make(problem, context) if make else RemoteError(problem), problem)


def _carrying(error: E, problem: Problem) -> E:
    """`error` with the problem's fields kept on it: the engine's own classes have no
    attributes for them."""
    if not isinstance(error, RemoteError):
        vars(error).update(
            problem=problem, title=problem.title, detail=problem.detail, status=problem.status
        )
    return error


def unreachable(url: str, cause: Exception) -> ServiceUnavailable:
    """The error of a request that got no answer: the server is away, as the engine
    says of a database that is away."""
    detail = f"chute at {url} cannot be reached ({type(cause).__name__}: {cause})"
    problem = Problem("service-unavailable", "Service unavailable", 503, detail)
    return _carrying(ServiceUnavailable(detail), problem)


def problem_of(error: BaseException) -> Problem | None:
    """The problem a remote error came from, or None for an error of this process."""
    found = getattr(error, "problem", None)
    return found if isinstance(found, Problem) else None
