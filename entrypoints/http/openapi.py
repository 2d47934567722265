"""The OpenAPI description: the problem responses each route may give, and the passes
that make FastAPI's description exact enough for client generators.

FastAPI describes what its models say. `describe` finishes that once, when the
description is first asked for: problems under their real media type, the components
of bodies that no model parses, whole numbers as integers, optional parameters without
a `null` that no query string can carry, and the API-key scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chute.entrypoints.http.problems import PROBLEM_JSON
from chute.entrypoints.http.schemas.jobs import ProblemResponse
from chute.entrypoints.http.schemas.upload import UploadForm
from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

Description = dict[str, Any]

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


def describe(app: FastAPI, *, keys_required: bool) -> None:
    """Make `app.openapi()` answer the finished description, built once: the same
    document, byte for byte, on every call and in every process."""
    make_schema = app.openapi
    passes: list[Callable[[Description], None]] = [
        _problems_as_problem_json,
        _extra_components,
        _whole_numbers,
        _parameters_without_null,
        lambda schema: _bearer_auth(schema, required=keys_required),
    ]

    def openapi() -> Description:
        if app.openapi_schema is None:
            schema = make_schema()
            for finish in passes:
                finish(schema)
        return app.openapi_schema or make_schema()

    app.openapi = openapi  # type: ignore[method-assign]


def _operations(schema: Description) -> list[tuple[str, Description]]:
    return [
        (path, operation)
        for path, item in schema.get("paths", {}).items()
        for operation in item.values()
    ]


def _problems_as_problem_json(schema: Description) -> None:
    """FastAPI files a response model under `application/json`; problems are sent as
    `application/problem+json`, so their schema moves there."""
    for _, operation in _operations(schema):
        for response in operation.get("responses", {}).values():
            content = response.get("content", {})
            if PROBLEM_JSON in content and "application/json" in content:
                content[PROBLEM_JSON] = content.pop("application/json")


# Models of bodies that the routes parse themselves (FastAPI sees no model there).
EXTRA_MODELS: tuple[type[BaseModel], ...] = (UploadForm,)


def _extra_components(schema: Description) -> None:
    """File `EXTRA_MODELS`, and the enums they use, among the components (where a
    hand-written body refers to them), sorted by name as FastAPI sorts its own."""
    _, found = models_json_schema(
        [(model, "validation") for model in EXTRA_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    components = schema.setdefault("components", {})
    schemas = components.get("schemas", {})
    for name, definition in found.get("$defs", {}).items():
        schemas.setdefault(name, definition)  # an enum FastAPI filed already stays as is
    components["schemas"] = dict(sorted(schemas.items()))


_NUMBER_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
)


def _whole_numbers(node: Any) -> None:
    """FastAPI's models hold bounds as floats (`100.0`): write whole ones as integers,
    as the models gave them, so that generators keep integer types and exact bounds."""
    if isinstance(node, list):
        for item in node:
            _whole_numbers(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _NUMBER_KEYWORDS and isinstance(value, float) and value.is_integer():
                node[key] = int(value)
            else:
                _whole_numbers(value)


def _parameters_without_null(schema: Description) -> None:
    """An optional query or header parameter is absent, never `null` (no query string
    or header can carry a JSON null): `T | None` is described as `T`, not required."""
    for _, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            described = parameter["schema"]
            options = described.get("anyOf", [])
            if parameter.get("required") or NULL not in options:
                continue
            rest = [option for option in options if option != NULL]
            outer = {k: v for k, v in described.items() if k != "anyOf" and v is not None}
            single = rest[0] if len(rest) == 1 else {"anyOf": rest}
            parameter["schema"] = {**single, **outer}


NULL = {"type": "null"}


BEARER_SCHEME = "bearerAuth"
_BEARER = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key from CHUTE_API_KEYS (`chute keygen` makes one), sent as "
    "`Authorization: Bearer <key>`; never in the URL. Only asked for when CHUTE_API_KEYS "
    "is set; without it the API is open and a key sent anyway is ignored.",
}
_UNAUTHORIZED = {
    "description": "No valid API key (`unauthorized`), when CHUTE_API_KEYS is set; see "
    "the WWW-Authenticate header",
    "headers": {
        "WWW-Authenticate": {
            "description": '`Bearer`, or `Bearer error="invalid_token"` when a key was given',
            "schema": {"type": "string"},
        }
    },
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemResponse"}}},
}


KEYED_OUTSIDE_API = frozenset({"/metrics"})
"""Paths outside /api/v1 that ask for a key too (auth.py protects all but its open ones)."""


def _bearer_auth(schema: Description, *, required: bool) -> None:
    """Declare the API-key scheme (so that /docs has an Authorize button) and its 401 on
    every `/api/v1` operation, whether keys are configured or not.

    With keys, each such operation requires the scheme. Without, the document's own
    `security` makes the key optional (`{}`, the anonymous alternative, first) and the
    other operations declare none: generators read a requirement on an operation as a
    key the client must have, even beside `{}`, and so would ask an open API for one.
    """
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER_SCHEME] = _BEARER
    if not required:
        schema["security"] = [{}, {BEARER_SCHEME: []}]
    for path, operation in _operations(schema):
        if path.startswith("/api/v1/") or path in KEYED_OUTSIDE_API:
            operation.setdefault("responses", {})["401"] = _UNAUTHORIZED
            if required:
                operation["security"] = [{BEARER_SCHEME: []}]
        elif not required:
            operation["security"] = []  # the health checks never ask for a key
