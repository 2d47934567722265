"""Text no database stores (NUL, unpaired surrogates) sent over HTTP: a 422 naming the
field wherever it comes (JSON bodies, upload forms, file names, query strings, headers,
paths), the same answer in memory, on SQLite and on PostgreSQL, and nothing changed.
And one client sending it does not disturb the others."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from chute.adapters.sqlalchemy import upgrade
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore
from chute.entrypoints.bootstrap import Container, build_container
from chute.entrypoints.settings import Settings

from tests.e2e.helpers import URL_JOB, error_locs
from tests.pg import create_database

# As a client's JSON encoder writes them: the escapes \u0000 and \ud800.
BAD = {"nul": "a\x00b", "surrogate": "a\ud800b", "low-surrogate": "\udfffz"}
WORKER = "w1"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(BAD))
def bad(request: pytest.FixtureRequest) -> str:
    return BAD[request.param]


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


@pytest.fixture
async def container(
    container: Container, backend: str, request: pytest.FixtureRequest, storage: Path
) -> Container:
    """The conftest's container (memory or SQLite), or one on a new PostgreSQL database."""
    if backend != "postgresql":
        return container
    url = await create_database(request.getfixturevalue("postgres_server_url"))
    await upgrade(url)
    on_postgres = build_container(Settings(database_url=url, storage_dir=str(storage)))
    for name in ("file_store", "libmagic", "magika"):
        getattr(on_postgres, name).override(getattr(container, name))
    return on_postgres


def as_json(body: Any) -> dict[str, Any]:
    """Request options for `body` as JSON with ASCII escapes (httpx's own encoder writes
    UTF-8, which has no way to write a lone surrogate)."""
    return {"content": json.dumps(body), "headers": {"content-type": "application/json"}}


class World:
    """What a request could change: every job, every event, every stored file."""

    def __init__(self, client: httpx.AsyncClient, storage: Path) -> None:
        self.client, self.storage = client, storage

    async def now(self) -> tuple[Any, ...]:
        jobs = (await self.client.get("/api/v1/jobs", params={"limit": 200})).json()["items"]
        events = [
            (await self.client.get(f"/api/v1/jobs/{job['id']}/events")).json() for job in jobs
        ]
        files = sorted(self.storage.rglob("*")) if self.storage.exists() else []
        return jobs, events, files


@pytest.fixture
async def world(client: httpx.AsyncClient, storage: Path) -> World:
    return World(client, storage)


@pytest.fixture
async def held(client: httpx.AsyncClient) -> str:
    """The id of a running job that WORKER holds."""
    assert (await client.post("/api/v1/jobs", json=URL_JOB)).status_code == 201
    response = await client.post("/api/v1/jobs/claim", json={"worker_id": WORKER})
    (job,) = response.json()["jobs"]
    return str(job["id"])


async def refused(world: World, request: Any, *loc: str | int) -> None:
    """`request` (a coroutine of a response) is a 422 naming `loc`, and changed nothing."""
    before = await world.now()
    response = await request
    assert loc in [tuple(found) for found in error_locs(response)], response.text
    assert await world.now() == before


# -- JSON bodies ---------------------------------------------------------------------------

CREATES = [
    ({"source_uri": "https://example.org/{bad}"}, ("source_uri",)),
    ({"source_type": "s3", "source_uri": "s3://bucket/{bad}"}, ("source_uri",)),
    ({"file_name": "{bad}.pdf"}, ("file_name",)),
    ({"metadata": {"tenant": "{bad}"}}, ("metadata",)),
    ({"metadata": {"deep": [{"er": ["{bad}"]}]}}, ("metadata",)),
    ({"metadata": {"nested": {"{bad}": 1}}}, ("metadata",)),
]


def filled(item: Any, bad: str) -> Any:
    if isinstance(item, dict):
        return {filled(key, bad): filled(value, bad) for key, value in item.items()}
    if isinstance(item, list):
        return [filled(value, bad) for value in item]
    return item.replace("{bad}", bad) if isinstance(item, str) else item


@pytest.mark.parametrize(("fields", "loc"), CREATES)
async def test_creates_refuse_unstorable_text(
    client: httpx.AsyncClient, world: World, bad: str, fields: dict[str, Any], loc: tuple[str]
) -> None:
    job = URL_JOB | filled(fields, bad)
    await refused(world, client.post("/api/v1/jobs", **as_json(job)), "body", *loc)
    batch = {"jobs": [URL_JOB, job]}
    await refused(
        world, client.post("/api/v1/jobs/batch", **as_json(batch)), "body", "jobs", 1, *loc
    )


async def test_a_metadata_key_with_a_lone_surrogate_is_refused_at_its_field(
    client: httpx.AsyncClient, world: World
) -> None:
    job = URL_JOB | {"metadata": {"\ud800": 1}}
    before = await world.now()
    response = await client.post("/api/v1/jobs", **as_json(job))
    assert [loc[:2] for loc in error_locs(response)] == [["body", "metadata"]]
    assert await world.now() == before


@pytest.mark.parametrize(
    ("route", "body", "loc"),
    [
        ("claim", {"worker_id": "{bad}"}, "worker_id"),
        ("heartbeat", {"worker_id": "{bad}"}, "worker_id"),
        ("heartbeat", {"worker_id": WORKER, "progress_message": "at {bad}"}, "progress_message"),
        ("complete", {"worker_id": "{bad}"}, "worker_id"),
        ("complete", {"worker_id": WORKER, "result": {"pages": "{bad}"}}, "result"),
        ("complete", {"worker_id": WORKER, "result": {"a": [{"{bad}": True}]}}, "result"),
        ("fail", {"worker_id": "{bad}", "error": "boom"}, "worker_id"),
        ("fail", {"worker_id": WORKER, "error": "boom: {bad}"}, "error"),
    ],
)
async def test_worker_calls_refuse_unstorable_text(
    client: httpx.AsyncClient,
    world: World,
    held: str,
    bad: str,
    route: str,
    body: dict[str, Any],
    loc: str,
) -> None:
    path = "/api/v1/jobs/claim" if route == "claim" else f"/api/v1/jobs/{held}/{route}"
    await refused(world, client.post(path, **as_json(filled(body, bad))), "body", loc)


# -- upload forms --------------------------------------------------------------------------

BOUNDARY = "chute-unstorable-boundary"


def form(*parts: tuple[bytes, bytes]) -> dict[str, Any]:
    """Request options of a multipart body of (Content-Disposition, data) parts, both
    given as raw bytes."""
    delimiter = f"--{BOUNDARY}".encode()
    body = b"".join(
        delimiter + b"\r\nContent-Disposition: " + disposition + b"\r\n\r\n" + data + b"\r\n"
        for disposition, data in parts
    )
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    return {"content": body + delimiter + b"--\r\n", "headers": headers}


def a_file(filename: bytes) -> tuple[bytes, bytes]:
    return b'form-data; name="file"; ' + filename, b"%PDF-1.4 content"


@pytest.mark.parametrize(
    "filename",
    [
        b"filename*=UTF-8''report%00.pdf",
        b"filename*=UTF-8''report%ED%A0%80.pdf",  # a surrogate, as WTF-8 writes it
        b"filename*=UTF-8''report%FF.pdf",  # not UTF-8 at all
        b"filename*=UTF-7''report%2B%32%41%41%2D.pdf",  # a charset that can spell a lone surrogate
        b'filename="report\x00.pdf"',
        b'filename="report\xed\xa0\x80.pdf"',
        b'filename="r\xc3.pdf"',
    ],
)
async def test_uploads_refuse_file_names_no_database_stores(
    client: httpx.AsyncClient, world: World, filename: bytes
) -> None:
    good = a_file(b'filename="ok.pdf"')
    request = client.post("/api/v1/upload", **form(good, a_file(filename)))
    await refused(world, request, "body", "file", 1, "filename")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (b"metadata", b'{"tenant": "a\\u0000b"}'),
        (b"metadata", b'{"tenant": "\\ud800"}'),
        (b"metadata", b'{"\\udc00": 1}'),
        (b"metadata", b'{"tenant": "\xed\xa0\x80"}'),
        (b"priority", b"high\x00"),
        (b"mode", b"\xed\xa0\x80"),
        (b"detect", b"true\x00"),
    ],
)
async def test_uploads_refuse_form_fields_no_database_stores(
    client: httpx.AsyncClient, world: World, name: bytes, value: bytes
) -> None:
    field = (b'form-data; name="' + name + b'"', value)
    request = client.post("/api/v1/upload", **form(a_file(b'filename="a.pdf"'), field))
    await refused(world, request, "body", name.decode())


# -- query strings, headers, paths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("cursor=abc%00def", ("query", "cursor")),
        ("cursor=abc%ED%A0%80", ("query", "cursor")),
        ("mime_type=text/pl%00ain", ("query", "mime_type")),
        ("status=pend%00ing", ("query", "status", 0)),
        ("created_after=2026-01-01T00:00:00Z%00", ("query", "created_after")),
        ("limit=5%00", ("query", "limit")),
        ("sort=created_at%00", ("query", "sort")),
    ],
)
async def test_query_strings_refuse_unstorable_text(
    client: httpx.AsyncClient, world: World, query: str, loc: tuple[str | int, ...]
) -> None:
    await refused(world, client.get(f"/api/v1/jobs?{query}"), *loc)


async def test_an_idempotency_key_with_nul_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = [(b"content-type", b"application/json"), (b"idempotency-key", b"key\x00")]
    request = client.post("/api/v1/jobs", content=json.dumps(URL_JOB), headers=headers)
    await refused(world, request, "header", "Idempotency-Key")


async def test_a_job_id_with_nul_is_refused(
    client: httpx.AsyncClient, world: World, held: str
) -> None:
    body = as_json({"worker_id": WORKER, "progress_message": "half"})
    request = client.post(f"/api/v1/jobs/{held}%00/heartbeat", **body)
    await refused(world, request, "path", "job_id")


# -- one client's bad requests, the others' good ones ---------------------------------------


async def test_clients_are_served_while_another_keeps_sending_unstorable_text(
    client: httpx.AsyncClient,
) -> None:
    stop = asyncio.Event()
    statuses: list[int] = []

    async def innocent(n: int) -> list[int]:
        answers = []
        for i in range(20):
            body = URL_JOB | {"metadata": {"client": n, "i": i}}
            answers.append((await client.post("/api/v1/jobs", json=body)).status_code)
        return answers

    async def culprit() -> None:
        bodies = [URL_JOB | {"source_uri": "https://example.org/\ud800"},
                  URL_JOB | {"metadata": {"k": "\x00"}}]  # fmt: skip
        while not stop.is_set():
            for body in bodies:
                statuses.append((await client.post("/api/v1/jobs", **as_json(body))).status_code)
            await asyncio.sleep(0.02)

    bad = asyncio.create_task(culprit())
    try:
        answers = await asyncio.gather(*(innocent(n) for n in range(8)))
    finally:
        stop.set()
        await bad
    assert {status for batch in answers for status in batch} == {201}
    assert set(statuses) == {422}
    listed = await client.get("/api/v1/jobs", params={"limit": 1})
    assert listed.json()["total"] == 8 * 20


async def test_a_refusal_that_names_unstorable_text_escapes_it(
    client: httpx.AsyncClient, world: World
) -> None:
    # The unknown part's name is named back: a surrogate could not be written as UTF-8.
    unknown = (b'form-data; name="x\xed\xa0\x80"', b"1")
    request = client.post("/api/v1/upload", **form(a_file(b'filename="a.pdf"'), unknown))
    await refused(world, request, "body", "x\\udced\\udca0\\udc80")
