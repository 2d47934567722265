"""API keys over HTTP: `Authorization: Bearer <key>` on `/api/v1`, refusals as problems.

The app is the e2e conftest's, with CHUTE_API_KEYS set through the container's
configuration, as `chute serve` does from the environment.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
import structlog
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.http.keys import KeyRing, digest_line
from chute.entrypoints.logging import configure_logging
from chute.entrypoints.settings import Settings
from fastapi import FastAPI

from tests.e2e.helpers import URL_JOB, LogBuffer, assert_problem, create_job

PLAIN_KEY = "chute_plain-key-for-tests-0123456789"
DIGEST_KEY = "chute_digest-key-for-tests-9876543210"
WRONG_KEY = "chute_wrong-key-for-tests-5555555555"
KEYS_SETTING = f"{PLAIN_KEY},{digest_line(DIGEST_KEY)}"
OPEN_PATHS = [
    "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc",
    "/docs/assets/swagger-ui-bundle.js", "/docs/assets/redoc.standalone.js",
]  # fmt: skip


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
async def keyed_app(container: Container) -> AsyncIterator[FastAPI]:
    container.config.api_keys.from_value(Settings(api_keys=KEYS_SETTING).api_keys)
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def keyed(keyed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=keyed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of the test, structlog's and the standard library's, as JSON."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "DEBUG")
    buffer = LogBuffer()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def api_operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every `/api/v1` operation the app describes, path parameters
    filled in."""
    job_id = str(uuid4())
    return [
        (method.upper(), path.replace("{job_id}", job_id))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    ]


def assert_unauthorized(response: httpx.Response, challenge: str) -> dict[str, Any]:
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == challenge
    return body


# -- open when no key is configured ----------------------------------------------------------


async def test_without_keys_the_api_is_open(client: httpx.AsyncClient) -> None:
    job = await create_job(client)
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).status_code == 200
    # A key sent anyway, even in the URL, changes nothing.
    listed = await client.get("/api/v1/jobs", headers=bearer(WRONG_KEY))
    assert listed.status_code == 200


async def test_without_keys_the_openapi_document_makes_the_key_optional(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    # On the document, not on each operation: generators take any requirement on an
    # operation, even beside the anonymous `{}`, as a key the client must have.
    assert spec["security"] == [{}, {"bearerAuth": []}]
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path.startswith("/api/v1/") or path == "/metrics":  # keyed, as the API
                assert "security" not in operation, path
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
            else:
                assert operation["security"] == [] and "401" not in operation["responses"]


# -- refusals --------------------------------------------------------------------------------


async def test_every_api_route_asks_for_a_key(keyed_app: FastAPI, keyed: httpx.AsyncClient) -> None:
    operations = api_operations(keyed_app)
    assert len(operations) >= 13
    for method, path in operations:
        missing = await keyed.request(method, path, json=URL_JOB)
        body = assert_unauthorized(missing, "Bearer")
        assert "Authorization: Bearer" in body["detail"]
        wrong = await keyed.request(method, path, json=URL_JOB, headers=bearer(WRONG_KEY))
        assert_unauthorized(wrong, 'Bearer error="invalid_token"')


async def test_a_refused_upload_is_not_read(keyed: httpx.AsyncClient) -> None:
    files = {"file": ("a.pdf", b"%PDF-1.4\n" * 1000, "application/pdf")}
    response = await keyed.post("/api/v1/upload", files=files, headers=bearer(WRONG_KEY))
    assert_unauthorized(response, 'Bearer error="invalid_token"')


async def test_a_path_outside_the_api_and_the_open_list_is_refused_too(
    keyed: httpx.AsyncClient,
) -> None:
    assert_unauthorized(await keyed.get("/nothing-here"), "Bearer")
    assert (await keyed.get("/nothing-here", headers=bearer(PLAIN_KEY))).status_code == 404


@pytest.mark.parametrize("name", ["api_key", "token", "access_token", "key", "API_KEY"])
async def test_a_key_in_the_query_string_is_refused_and_not_echoed(
    keyed: httpx.AsyncClient, name: str
) -> None:
    response = await keyed.get("/api/v1/jobs", params={name: PLAIN_KEY})
    body = assert_unauthorized(response, "Bearer")
    assert "Authorization header only" in body["detail"]
    assert PLAIN_KEY not in response.text
    # Even beside a good header: the URL has leaked the key, the client must change.
    with_header = await keyed.get("/api/v1/jobs", params={name: "x"}, headers=bearer(PLAIN_KEY))
    assert_unauthorized(with_header, "Bearer")


@pytest.mark.parametrize(
    ("value", "challenge"),
    [
        (b"Bearer", 'Bearer error="invalid_token"'),
        (b"Bearer ", 'Bearer error="invalid_token"'),
        (b"Bearer  " + PLAIN_KEY.encode(), 'Bearer error="invalid_token"'),
        (b"Bearer " + PLAIN_KEY.encode() + b" extra", 'Bearer error="invalid_token"'),
        (b"Bearer\t" + PLAIN_KEY.encode(), 'Bearer error="invalid_token"'),
        (b"Bearer " + PLAIN_KEY.encode() + b"\xc3\xa4", 'Bearer error="invalid_token"'),
        (b"Bearer \xff\xfe\x00", 'Bearer error="invalid_token"'),
        (b"Bearer " + b"A" * 10_000, 'Bearer error="invalid_token"'),
        (b"Bearer=" + PLAIN_KEY.encode(), 'Bearer error="invalid_token"'),
        (b"Basic dXNlcjpwYXNz", "Bearer"),
        (PLAIN_KEY.encode(), "Bearer"),
        (b"", "Bearer"),
        (b"\xe2\x82\xac", "Bearer"),
    ],
)
async def test_a_malformed_authorization_header_is_a_401_never_a_500(
    keyed: httpx.AsyncClient, value: bytes, challenge: str
) -> None:
    response = await keyed.get("/api/v1/jobs", headers=[(b"authorization", value)])
    body = assert_unauthorized(response, challenge)
    assert PLAIN_KEY not in body["detail"]


async def test_two_authorization_headers_are_refused_even_if_both_are_good(
    keyed: httpx.AsyncClient,
) -> None:
    headers = [(b"authorization", f"Bearer {key}".encode()) for key in (PLAIN_KEY, DIGEST_KEY)]
    response = await keyed.get("/api/v1/jobs", headers=headers)
    assert_unauthorized(response, 'Bearer error="invalid_token"')


# -- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [PLAIN_KEY, DIGEST_KEY], ids=["plain", "digest"])
async def test_a_configured_key_opens_the_api(keyed: httpx.AsyncClient, key: str) -> None:
    created = await keyed.post("/api/v1/jobs", json=URL_JOB, headers=bearer(key))
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    got = await keyed.get(f"/api/v1/jobs/{job_id}", headers=bearer(key))
    assert got.status_code == 200
    assert got.json()["id"] == job_id
    assert "x-request-id" in got.headers


async def test_the_scheme_name_is_case_insensitive(keyed: httpx.AsyncClient) -> None:
    response = await keyed.get("/api/v1/jobs", headers={"Authorization": f"bEaReR {PLAIN_KEY}"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", OPEN_PATHS)
async def test_health_and_the_api_description_stay_open(
    keyed: httpx.AsyncClient, path: str
) -> None:
    response = await keyed.get(path)
    assert response.status_code == 200, response.text
    assert "www-authenticate" not in response.headers


# -- keys stay secret --------------------------------------------------------------------------


async def test_a_key_appears_in_no_log_line_and_no_response(
    keyed_app: FastAPI, keyed: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    responses: list[httpx.Response] = []
    for key in (PLAIN_KEY, DIGEST_KEY, WRONG_KEY):
        responses.append(await keyed.post("/api/v1/jobs", json=URL_JOB, headers=bearer(key)))
        responses.append(await keyed.get("/api/v1/jobs", headers=bearer(key)))
        responses.append(await keyed.get("/api/v1/jobs", params={"api_key": key}))
        responses.append(await keyed.get("/api/v1/jobs", headers={"Authorization": f"Basic {key}"}))
        responses.append(await keyed.get("/api/v1/jobs", headers=bearer(key + " x")))
    for method, path in api_operations(keyed_app):
        responses.append(await keyed.request(method, path, headers=bearer(WRONG_KEY)))

    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert any(line["event"] == "http.unauthorized" for line in lines)
    assert sum(line["event"] == "http.request" for line in lines) == len(responses)
    seen = json_logs.getvalue() + "".join(
        r.text + "".join(f"{k}: {v}" for k, v in r.headers.items()) for r in responses
    )
    for key in (PLAIN_KEY, DIGEST_KEY, WRONG_KEY):
        assert key not in seen
        assert key.removeprefix("chute_") not in seen


async def test_a_refusal_is_logged_with_its_reason_and_request_id(
    keyed: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    await keyed.get("/api/v1/jobs", headers={**bearer(WRONG_KEY), "X-Request-ID": "auth-1"})
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    refused = next(line for line in lines if line["event"] == "http.unauthorized")
    request = next(line for line in lines if line["event"] == "http.request")
    assert (refused["reason"], refused["request_id"]) == ("invalid_key", "auth-1")
    assert (request["status"], request["request_id"]) == (401, "auth-1")


# -- OpenAPI -----------------------------------------------------------------------------------


async def test_the_openapi_document_declares_the_bearer_scheme(keyed: httpx.AsyncClient) -> None:
    spec = (await keyed.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearerAuth"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    for path, operations in spec["paths"].items():
        for operation in operations.values():
            if path.startswith("/api/v1/") or path == "/metrics":  # keyed, as the API
                assert operation["security"] == [{"bearerAuth": []}], path
                unauthorized = operation["responses"]["401"]
                assert list(unauthorized["content"]) == ["application/problem+json"]
                assert "WWW-Authenticate" in unauthorized["headers"]
            else:
                assert "security" not in operation and "401" not in operation["responses"]
    docs = await keyed.get("/docs")
    assert "/openapi.json" in docs.text  # Swagger UI, whose Authorize button reads the scheme


# -- chute keygen ------------------------------------------------------------------------------


def test_chute_keygen_prints_a_key_and_its_digest_line_even_with_bad_settings() -> None:
    env = os.environ | {"CHUTE_API_KEYS": "sha256:not-hex", "CHUTE_PORT": "nope"}
    done = subprocess.run(
        [sys.executable, "-m", "chute.entrypoints", "keygen"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    key, line = done.stdout.splitlines()
    assert key.startswith("chute_") and line.startswith("sha256:")
    assert line == digest_line(key)
    assert KeyRing.of(Settings(api_keys=line).api_keys).accepts(key)


def test_chute_serve_refuses_to_start_on_a_bad_digest_without_showing_it() -> None:
    secret = "0123456789abcdef" * 3
    env = os.environ | {"CHUTE_API_KEYS": f"good-key,sha256:{secret}"}
    done = subprocess.run(
        [sys.executable, "-m", "chute.entrypoints", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "CHUTE_API_KEYS:" in done.stderr and "entry 2" in done.stderr
    assert secret not in done.stderr and "good-key" not in done.stderr
