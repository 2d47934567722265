"""The OpenAPI description says exactly what the server does, in forms generators read,
and a method a path does not take is a 405 on every route."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from chute.domain import validation as rules
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http import app as app_module
from chute.entrypoints.http.app import create_app
from fastapi import FastAPI
from starlette.routing import Route

from tests.e2e.helpers import assert_problem

Spec = dict[str, Any]
REF = "#/components/schemas/"


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> Spec:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    described: Spec = response.json()
    return described


def component(spec: Spec, name: str) -> Spec:
    found: Spec = spec["components"]["schemas"][name]
    return found


def walk(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every dict in `node`, with where it lies."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def refs(node: Any) -> set[str]:
    return {
        item["$ref"].removeprefix(REF)
        for _, item in walk(node)
        if isinstance(item.get("$ref"), str) and item["$ref"].startswith(REF)
    }


def reachable(spec: Spec, roots: set[str]) -> set[str]:
    """The components `roots` name, and those they name, transitively."""
    seen: set[str] = set()
    todo = set(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo |= refs(component(spec, name))
    return seen


def operations(spec: Spec) -> Iterator[tuple[str, str, Spec]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def without_null(schema: Spec) -> Spec:
    """The schema of a nullable property's value (`T` of `T | null`)."""
    options = [s for s in schema.get("anyOf", [schema]) if s != {"type": "null"}]
    assert len(options) == 1, schema
    single: Spec = options[0]
    return single


# -- the document as a whole ------------------------------------------------------------------


async def test_the_description_is_the_same_bytes_from_every_app(
    spec: Spec, container: Container
) -> None:
    again = create_app(container, maintenance=False).openapi()

    assert json.dumps(again) == json.dumps(spec)


async def test_the_description_points_at_no_document_beside_it(spec: Spec) -> None:
    # It states its conventions itself: a client has no other file to read.
    assert ".md" not in json.dumps(spec)


async def test_every_bound_is_an_integer(spec: Spec) -> None:
    for where, node in walk(spec):
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            assert not isinstance(node.get(key), float), (where, key)


# -- times, enums, patterns ------------------------------------------------------------------


async def test_every_time_is_a_date_time(spec: Spec) -> None:
    times = 0
    for name, schema in spec["components"]["schemas"].items():
        for field, value in schema.get("properties", {}).items():
            if field == "at" or field.endswith(("_at", "_after", "_before")):
                assert without_null(value)["format"] == "date-time", (name, field)
                times += 1
    for _, _, operation in operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["name"].startswith("created_"):
                assert parameter["schema"]["format"] == "date-time"
                times += 1
    assert times >= 10


async def test_every_enum_is_one_shared_component(spec: Spec) -> None:
    schemas = spec["components"]["schemas"]
    for where, node in walk(spec):
        if "enum" in node:
            assert where[:2] == ("components", "schemas") and len(where) == 3, where
    enums = {name for name, schema in schemas.items() if "enum" in schema}
    assert {"JobStatus", "Priority", "Mode", "SourceType", "ReferenceSourceType"} <= enums
    assert schemas["ReferenceSourceType"]["enum"] == ["url", "s3"]
    claim = schemas["ClaimRequest"]["properties"]
    assert refs(claim["mode"]) == {"Mode"} and refs(claim["source_type"]) == {"SourceType"}


async def test_values_carry_the_rules_the_server_checks(spec: Spec) -> None:
    create = component(spec, "JobCreateRequest")["properties"]
    assert create["source_uri"]["maxLength"] == rules.MAX_URI_LENGTH
    uri = re.compile(create["source_uri"]["pattern"])
    assert uri.search("https://example.org/a.pdf") and uri.search("s3://bucket/key")
    assert not uri.search("ftp://example.org/a") and not uri.search("s3://bucket/")
    assert without_null(create["mime_type"])["pattern"] == rules.MIME_TYPE_PATTERN
    assert without_null(create["file_size"])["exclusiveMaximum"] == rules.MAX_FILE_SIZE + 1
    assert (create["max_attempts"]["minimum"], create["max_attempts"]["maximum"]) == (1, 20)
    claim = component(spec, "ClaimRequest")["properties"]
    assert (claim["worker_id"]["minLength"], claim["worker_id"]["maxLength"]) == (1, 255)
    assert (claim["limit"]["minimum"], claim["limit"]["maximum"]) == (1, 100)
    assert without_null(claim["mime_type"])["pattern"] == rules.MEDIA_RANGE_PATTERN
    assert component(spec, "FailRequest")["properties"]["error"]["maxLength"] == 8192
    parameters = {
        (path, method, parameter["name"]): parameter["schema"]
        for path, method, operation in operations(spec)
        for parameter in operation.get("parameters", [])
    }
    key = parameters[("/api/v1/jobs", "post", "Idempotency-Key")]
    assert (key["minLength"], key["maxLength"], key["pattern"]) == (1, 255, r"^[\x20-\x7e]+$")
    limit = parameters[("/api/v1/jobs", "get", "limit")]
    assert (limit["minimum"], limit["maximum"]) == (1, 200)
    for (path, _, name), schema in parameters.items():
        if name == "job_id":  # one in a path; a list of them in the stream's query
            assert schema.get("items", schema)["format"] == "uuid", path
        assert {"type": "null"} not in schema.get("anyOf", []), (path, name)


# -- required in answers, optional in requests ---------------------------------------------


async def test_every_field_an_answer_always_has_is_required(spec: Spec) -> None:
    answered = {
        name
        for _, _, operation in operations(spec)
        for status, response in operation["responses"].items()
        for name in refs(response.get("content", {}))
        if status.startswith("2")
    }
    models = reachable(spec, answered)
    assert {"JobResponse", "DetectionResponse", "JobListResponse"} <= models
    problems = {"ProblemResponse", "ItemProblem"}  # a problem, and one of complete_jobs' items
    for name in models - problems:
        schema = component(spec, name)
        if "properties" in schema:
            assert set(schema["required"]) == set(schema["properties"]), name
            assert not any("default" in field for field in schema["properties"].values()), name
    for name in problems:
        problem = component(spec, name)
        # `errors` comes with validation errors only; every other field always.
        assert set(problem["properties"]) - set(problem["required"]) == {"errors"}, name


async def test_no_field_with_a_default_is_required_in_a_request(spec: Spec) -> None:
    bodies = {
        name
        for _, _, operation in operations(spec)
        for name in refs(operation.get("requestBody", {}))
    }
    models = reachable(spec, bodies)
    assert {"JobCreateRequest", "ClaimRequest", "UploadForm"} <= models
    for name in models:
        schema = component(spec, name)
        for field, value in schema.get("properties", {}).items():
            if "default" in value:
                assert field not in schema.get("required", []), (name, field)
    assert component(spec, "JobCreateRequest")["required"] == ["source_type", "source_uri"]


# -- bodies that are not JSON ----------------------------------------------------------------


async def test_content_is_described_as_bytes(spec: Spec) -> None:
    answer = spec["paths"]["/api/v1/jobs/{job_id}/content"]["get"]["responses"]["200"]

    first, schema = next(iter(answer["content"].items()))
    assert first == "application/octet-stream"
    assert schema["schema"] == {"type": "string", "format": "binary"}


async def test_the_upload_form_sends_its_metadata_as_json(spec: Spec) -> None:
    body = spec["paths"]["/api/v1/upload"]["post"]["requestBody"]["content"]
    form = body["multipart/form-data"]

    assert form["encoding"]["metadata"] == {"contentType": "application/json"}
    assert form["encoding"]["file"] == {"contentType": "application/octet-stream"}
    fields = component(spec, refs(form["schema"]).pop())["properties"]
    assert fields["metadata"]["type"] == "object"
    assert fields["file"]["items"] == {"type": "string", "format": "binary"}
    assert refs(fields["priority"]) == {"Priority"} and refs(fields["detect"]) == {"FormFlag"}


# -- 405 on every route ----------------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
JOB_ID = str(uuid4())


def routes_by_path(app: FastAPI) -> dict[str, set[str]]:
    """Every path the app serves (path parameters filled in), with the methods it takes."""
    routes = [route for module in app_module.ROUTE_MODULES for route in module.router.routes]
    found: dict[str, set[str]] = {app.openapi_url or "": {"GET"}}
    for route in routes:
        assert isinstance(route, Route)
        path = route.path.replace("{job_id}", JOB_ID).replace("{name}", "favicon.png")
        found.setdefault(path, set()).update(route.methods or ())
    return found


async def test_a_method_a_path_does_not_take_is_405_with_allow_on_every_route(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    paths = routes_by_path(app)
    assert len(paths) >= 18 and "/api/v1/jobs/claim" in paths
    checked = 0
    for path, taken in paths.items():
        for method in METHODS:
            if method in taken:
                continue
            response = await client.request(method, path)
            assert_problem(response, 405, "method-not-allowed")
            allowed = set(response.headers["allow"].split(", "))
            assert allowed - {"HEAD"} == taken - {"HEAD"}, (method, path)
            checked += 1
    assert checked >= 60
