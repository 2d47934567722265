"""Fuzzing from the contract, on the memory adapters and on a migrated SQLite file.

First schemathesis drives the app from its own OpenAPI description (tests/fuzz/contract.py):
per operation `CHUTE_FUZZ_EXAMPLES` generated requests (25 for `make test`, 500 for
`make fuzz`), valid and invalid ones, besides its examples and coverage cases (boundary
values, missing parts, undeclared methods), on a fixed seed (`CHUTE_FUZZ_SEED`). The app
runs in process, through schemathesis's ASGI transport (which runs the app's lifespan
on its own event loop), with jobs made first in every status the API can reach.

Then hypothesis sends upload bodies that schemathesis cannot write: file names with
control characters and traversal, fields of any value, parts in any order, bodies cut
short. A `LocalFileStore` keeps the files, so that the disk can be checked after each.

Last, requests drawn by schemathesis and made real get NUL or a lone surrogate in one
string each (every field, parameter, header, form field and file name of every
operation, tests/fuzz/unstorable.py): each must be a 422 naming that place, and change
no job, no event and no stored file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http.app import create_app
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.python import asgi

from tests import corpus
from tests.e2e.helpers import URL_JOB, error_locs
from tests.fuzz import contract, forms, unstorable
from tests.fuzz.contract import schema

UPLOADS = "/api/v1/upload"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


# -- schemathesis ----------------------------------------------------------------------------


@pytest.fixture
def fuzz_app(container: Container) -> Iterator[FastAPI]:
    """The app, started by schemathesis's ASGI client, with jobs in every status (and
    without the background maintenance, which would change jobs under the fuzzer)."""
    app = create_app(container, maintenance=False)
    try:
        with asgi.get_client(app) as client:
            contract.KNOWN_IDS[:] = contract.seed_jobs(client)
        yield app
    finally:
        contract.KNOWN_IDS.clear()
        asgi.shutdown_lifespans()  # closes the app's database before tmp_path goes


@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_response_keeps_the_contract(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    # One app for all the cases of an operation, on purpose: the jobs they make pile up.
    checks, excluded = contract.CHECKS, contract.excluded_checks(case)
    case.call_and_validate(app=fuzz_app, checks=checks, excluded_checks=excluded)


# -- uploads ---------------------------------------------------------------------------------

UPLOAD_SETTINGS = settings(
    max_examples=contract.EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The app and its storage folder are kept across examples on purpose: each example
    # checks what it changed on disk, and the jobs of earlier ones pile up.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def on_disk(storage: Path) -> set[Path]:
    return set(storage.rglob("*")) if storage.exists() else set()


async def job_count(client: httpx.AsyncClient) -> int:
    response = await client.get("/api/v1/jobs", params={"limit": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def upload(
    client: httpx.AsyncClient, storage: Path, body: bytes, content_type: str = forms.CONTENT_TYPE
) -> httpx.Response:
    """Send an upload; check that the answer is no 5xx, that an error is a problem,
    and that a refused upload left nothing on disk and made no job."""
    before, jobs = on_disk(storage), await job_count(client)
    response = await client.post(UPLOADS, content=body, headers={"content-type": content_type})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert all(problem.get(name) for name in contract.PROBLEM_FIELDS), problem
        assert problem["status"] == response.status_code
        assert on_disk(storage) == before, "a refused upload left files behind"
        assert await job_count(client) == jobs, "a refused upload made jobs"
    return response


def assert_stored(storage: Path, job: dict[str, Any], data: bytes) -> Path:
    """The job's file is `{storage}/{uuid}/{file_name}`, with these bytes; its path."""
    key = job["source_uri"].removeprefix("upload://")
    folder, _, name = key.partition("/")
    assert name == job["file_name"]
    path = storage / folder / name
    assert path.resolve().parent.parent == storage.resolve(), f"{key!r} leaves its folder"
    assert path.read_bytes() == data
    return path


@UPLOAD_SETTINGS
@given(filename=forms.filenames, data=forms.contents)
async def test_any_file_name_is_stored_under_its_safe_name(
    client: httpx.AsyncClient, storage: Path, filename: str, data: bytes
) -> None:
    part = forms.Part("file", data, filename=filename, extended=True)

    response = await upload(client, storage, forms.multipart([part]))

    if not forms.storable(filename):
        assert error_locs(response) == [["body", "file", 0, "filename"]]
        return
    assert response.status_code == 201, response.text
    (job,) = response.json()["jobs"]
    assert job["file_name"] == forms.safe_name(filename)
    assert_stored(storage, job, data)


@UPLOAD_SETTINGS
@given(filename=forms.filenames, data=forms.contents)
async def test_a_raw_file_name_never_leaves_its_folder(
    client: httpx.AsyncClient, storage: Path, filename: str, data: bytes
) -> None:
    # Sent as written, quotes, line breaks and all: the header may well break.
    part = forms.Part("file", data, filename=filename)

    response = await upload(client, storage, forms.multipart([part]))

    if response.status_code == 201:
        (job,) = response.json()["jobs"]
        assert forms.safe_name(job["file_name"]) == job["file_name"]
        assert_stored(storage, job, data)


@UPLOAD_SETTINGS
@given(parts=forms.forms())
async def test_a_form_is_taken_whole_or_refused_whole(
    client: httpx.AsyncClient, storage: Path, parts: list[forms.Part]
) -> None:
    response = await upload(client, storage, forms.multipart(parts))

    assert (response.status_code == 201) == forms.accepted(parts), response.text
    if response.status_code == 201:
        files = [part for part in parts if part.name == "file"]
        jobs = response.json()["jobs"]
        assert len(jobs) == len(files)
        for job, part in zip(jobs, files, strict=True):
            assert_stored(storage, job, part.data)


@UPLOAD_SETTINGS
@given(parts=forms.forms(), kept=st.floats(0, 1))
async def test_a_body_cut_short_is_refused_and_leaves_nothing(
    client: httpx.AsyncClient, storage: Path, parts: list[forms.Part], kept: float
) -> None:
    body = forms.multipart(parts)
    # Cut at least into the closing `--`: without only the CRLF after its closing
    # delimiter, a body is whole (RFC 2046), and rightly taken.
    cut = body[: int((len(body) - len(b"-\r\n")) * kept)]

    response = await upload(client, storage, cut)

    assert 400 <= response.status_code < 500


# -- text no database stores ---------------------------------------------------------------

UNSTORABLE_SETTINGS = settings(
    # Per slot (51 of them): a few in `make test`, a tenth of CHUTE_FUZZ_EXAMPLES beyond.
    max_examples=max(2, contract.EXAMPLES // 10),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
async def named_jobs(client: httpx.AsyncClient) -> list[str]:
    """Jobs for requests to name: one running, held by the worker the requests are made
    real with (so that its calls would change it), one pending, one upload."""
    source = {"source_type": "url", "source_uri": contract.SOURCES["url"]}
    created = [(await client.post("/api/v1/jobs", json=source)).json()["id"] for _ in range(2)]
    claim = {"worker_id": contract.WORKER, "lease_seconds": 3600}
    (held,) = (await client.post("/api/v1/jobs/claim", json=claim)).json()["jobs"]
    files = {"file": ("report.pdf", corpus.pdf(), "application/pdf")}
    (uploaded,) = (await client.post(UPLOADS, files=files)).json()["jobs"]
    return [held["id"], *(job_id for job_id in created if job_id != held["id"]), uploaded["id"]]


async def everything(client: httpx.AsyncClient, storage: Path) -> tuple[Any, ...]:
    """Every job (as the API shows it), every event and every stored file."""
    jobs = (await client.get("/api/v1/jobs", params={"limit": 200})).json()["items"]
    events = [(await client.get(f"/api/v1/jobs/{job['id']}/events")).json() for job in jobs]
    return jobs, events, on_disk(storage)


@pytest.mark.parametrize("slot", unstorable.slots(schema.raw_schema), ids=str)
@UNSTORABLE_SETTINGS
@given(data=st.data())
async def test_unstorable_text_anywhere_is_refused_and_changes_nothing(
    client: httpx.AsyncClient,
    storage: Path,
    named_jobs: list[str],
    slot: unstorable.Slot,
    data: st.DataObject,
) -> None:
    case = data.draw(schema[slot.path][slot.method.upper()].as_strategy())
    request = unstorable.inject(data.draw, slot, case, named_jobs)
    before = await everything(client, storage)

    response = await client.request(
        request.method, request.url, headers=request.headers, content=request.content
    )

    locs = refused_at(response)
    assert any(loc[: len(slot.loc)] == slot.loc for loc in locs), (locs, request)
    assert await everything(client, storage) == before


def refused_at(response: httpx.Response) -> list[list[str | int]]:
    """The locs of a 422's errors; of a many-item answer (`POST /jobs/complete`), those
    of its items' validation problems (each item is refused on its own)."""
    if response.status_code == 200 and "items" in response.json():
        problems = [item["problem"] for item in response.json()["items"] if "problem" in item]
        invalid = [p for p in problems if p["type"] == "validation-error"]
        return [error["loc"] for p in invalid for error in p["errors"]]
    return error_locs(response)


# -- what the fuzzers found, pinned --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/v1/jobs", "POST, GET"),
        ("/api/v1/jobs/0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41", "GET, DELETE"),
        ("/api/v1/jobs/claim", "POST"),
    ],
)
async def test_a_405_allows_every_method_of_its_path(
    client: httpx.AsyncClient, path: str, allowed: str
) -> None:
    response = await client.options(path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed


async def test_a_whole_number_written_with_a_fraction_is_an_integer(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/jobs", json=URL_JOB | {"max_attempts": 5.0})

    assert response.status_code == 201, response.text
    assert response.json()["max_attempts"] == 5


async def test_a_file_size_past_64_bits_is_refused(client: httpx.AsyncClient) -> None:
    # Was a 500 on SQLite: "Python int too large to convert to SQLite INTEGER".
    response = await client.post("/api/v1/jobs", json=URL_JOB | {"file_size": 2**63})

    assert error_locs(response) == [["body", "file_size"]]


async def test_a_page_past_64_bit_offsets_is_refused(client: httpx.AsyncClient) -> None:
    # Was a 500 on SQLite, from the offset the page makes.
    response = await client.get("/api/v1/jobs", params={"page": 10**20})

    assert error_locs(response) == [["query", "page"]]
