"""Concrete paths win over templated ones, whatever the method.

Routing takes a route whose path and method both match before one whose path alone
does, so `GET /api/v1/jobs/claim` would reach `GET /api/v1/jobs/{job_id}` and fail there
as a job id that is not a UUID (422), although `/api/v1/jobs/claim` is a path of its own
that takes POST only. As in OpenAPI, where a concrete path is matched before a templated
one, such a request answers 405 with the `Allow` of the concrete path.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter
from starlette.exceptions import HTTPException
from starlette.routing import Route


def _refuse_method() -> None:
    # The problem handler names the path's own methods in `Allow`.
    raise HTTPException(405)


def wrong_methods(routers: Iterable[APIRouter]) -> APIRouter:
    """A router, to include before `routers`, that answers 405 on each literal path of
    theirs for the methods that only a templated route of theirs would take there."""
    routes = [route for router in routers for route in router.routes if isinstance(route, Route)]
    own: dict[str, set[str]] = {}
    for route in routes:
        if not route.param_convertors:
            own.setdefault(route.path, set()).update(route.methods or ())
    taken: dict[str, set[str]] = {}
    for route in routes:
        if route.param_convertors:
            for path in own:
                if route.path_regex.match(path):
                    taken.setdefault(path, set()).update(route.methods or ())
    guard = APIRouter(include_in_schema=False)
    for path in sorted(taken):
        if methods := sorted(taken[path] - own[path]):
            guard.add_api_route(path, _refuse_method, methods=methods)
    return guard
