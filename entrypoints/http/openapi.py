"""The OpenAPI description of the problem responses each route may give."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chute.entrypoints.http.problems import PROBLEM_JSON
from chute.entrypoints.http.schemas.jobs import ProblemResponse
from fastapi import FastAPI
from pydantic import BaseModel

_DESCRIPTIONS = {
    400: "The client closed the connection before the body ended (`bad-request`)",
    404: "No such job (`job-not-found`)",
    409: "The job's status does not allow this (`invalid-transition`), or the "
    "Idempotency-Key is in use (`idempotency-key-in-use`)",
    413: "The body, or one of its files, is too large (`payload-too-large`)",
    415: "The body's media type, or a file's detected type, is not accepted "
    "(`unsupported-media-type`)",
    422: "Invalid input (`validation-error`, `idempotency-key-reused`)",
    500: "Unexpected error (`internal-error`)",
    503: "Database or storage unreachable (`service-unavailable`)",
    507: "The storage folder is full (`insufficient-storage`)",
}


def success_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    """An OpenAPI `responses=` entry for a second success status (200 replay, 202)."""
    return {"model": model, "description": description}


def problem_responses(
    *statuses: int, descriptions: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these problem statuses (500 is always added);
    `descriptions` replaces the usual wording where a route means something else."""
    wording = {**_DESCRIPTIONS, **(descriptions or {})}
    return {
        status: {
            "model": ProblemResponse,
            "description": wording[status],
            "content": {PROBLEM_JSON: {}},
        }
        for status in (*statuses, 500)
    }


def serve_problems_as_problem_json(app: FastAPI) -> None:
    """Show the problem responses of the OpenAPI document under their real media type.

    FastAPI files a response model under `application/json`; ours are sent as
    `application/problem+json`, so the schema is moved there.
    """
    make_schema = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in make_schema().get("paths", {}).values():
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        content = response.get("content", {})
                        if PROBLEM_JSON in content and "application/json" in content:
                            content[PROBLEM_JSON] = content.pop("application/json")
        return app.openapi_schema or make_schema()

    app.openapi = openapi  # type: ignore[method-assign]


BEARER_SCHEME = "bearerAuth"
_UNAUTHORIZED = {
    "description": "No valid API key (`unauthorized`); see the WWW-Authenticate header",
    "headers": {
        "WWW-Authenticate": {
            "description": '`Bearer`, or `Bearer error="invalid_token"` when a key was given',
            "schema": {"type": "string"},
        }
    },
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemResponse"}}},
}


def declare_bearer_auth(app: FastAPI, *, required: bool) -> None:
    """Declare the API-key scheme (so that /docs has an Authorize button) on every
    `/api/v1` operation: required, with its 401, when keys are configured; optional
    (`{}` is the anonymous alternative) when the API is open."""
    make_schema = app.openapi
    scheme = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from CHUTE_API_KEYS (`chute keygen` makes one), sent as "
        "`Authorization: Bearer <key>`; never in the URL.",
    }
    # `{}`: the anonymous alternative, for an API without keys.
    security: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}, *([] if required else [{}])]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = make_schema()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[BEARER_SCHEME] = scheme
            for path, operations in schema.get("paths", {}).items():
                if not path.startswith("/api/v1/"):
                    continue
                for operation in operations.values():
                    operation["security"] = security
                    if required:
                        operation.setdefault("responses", {})["401"] = _UNAUTHORIZED
        return app.openapi_schema or make_schema()

    app.openapi = openapi  # type: ignore[method-assign]
