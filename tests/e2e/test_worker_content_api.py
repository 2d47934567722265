"""The worker routes that `RemoteEngine` needs beside claim and the reports: release a
job, store its content (`PUT .../content`, the raw bytes streamed), detect it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore, UploadLimits
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers
from fastapi import FastAPI

from tests.e2e.helpers import assert_problem, claim_one, create_job, error_locs, get, report

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


def stored(storage: Path) -> list[Path]:
    """Every file the storage holds (the owner marker aside)."""
    return sorted(p for p in storage.rglob("*") if p.is_file() and p.parent != storage)


async def running(client: httpx.AsyncClient, worker: str = "w1") -> str:
    await create_job(client)
    job_id: str = (await claim_one(client, worker))["id"]
    return job_id


async def put_content(
    client: httpx.AsyncClient, job_id: str, content: Any, **params: str
) -> httpx.Response:
    params = {"worker_id": "w1"} | params
    return await client.put(f"/api/v1/jobs/{job_id}/content", params=params, content=content)


# -- release ---------------------------------------------------------------------------------


async def test_release_gives_the_job_back_pending_at_once(client: httpx.AsyncClient) -> None:
    job_id = await running(client)

    response = await report(client, job_id, "release")

    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["status"], job["worker_id"], job["run_after"]) == ("pending", None, None)
    assert (await claim_one(client, "w2"))["id"] == job_id


async def test_release_by_another_worker_is_lease_not_held(client: httpx.AsyncClient) -> None:
    job_id = await running(client)

    assert_problem(await report(client, job_id, "release", "w2"), 409, "lease-not-held")
    assert_problem(await report(client, str(uuid4()), "release"), 404, "job-not-found")
    assert error_locs(await report(client, job_id, "release", "")) == [["body", "worker_id"]]
    assert (await get(client, job_id))["status"] == "running"


# -- store content -----------------------------------------------------------------------------


async def test_put_content_stores_and_detects_it(client: httpx.AsyncClient, storage: Path) -> None:
    job_id = await running(client)

    response = await put_content(client, job_id, PDF, filename="../../a report.pdf")

    assert response.status_code == 200, response.text
    job = response.json()
    assert job["file_name"] == "a report.pdf"  # made safe as upload names are
    assert (job["file_size"], job["mime_type"]) == (len(PDF), "application/pdf")
    assert job["detection"]["size"] == len(PDF)
    assert (await client.get(f"/api/v1/jobs/{job_id}/content")).content == PDF
    assert len(stored(storage)) == 1


async def test_put_content_streams_a_body_without_a_length(client: httpx.AsyncClient) -> None:
    job_id = await running(client)

    async def chunks() -> Any:
        for start in range(0, len(PDF), 7):
            yield PDF[start : start + 7]

    response = await put_content(client, job_id, chunks(), filename="a.pdf")

    assert response.status_code == 200, response.text
    assert response.json()["file_size"] == len(PDF)


async def test_put_content_by_another_worker_stores_nothing(
    client: httpx.AsyncClient, storage: Path
) -> None:
    job_id = await running(client)

    response = await put_content(client, job_id, PDF, worker_id="w2")

    assert_problem(response, 409, "lease-not-held")
    assert_problem(await put_content(client, str(uuid4()), PDF), 404, "job-not-found")
    assert stored(storage) == []
    assert (await get(client, job_id))["file_size"] is None


async def test_put_content_with_a_bad_worker_id_is_refused(client: httpx.AsyncClient) -> None:
    job_id = await running(client)

    response = await put_content(client, job_id, PDF, worker_id="")

    assert error_locs(response) == [["query", "worker_id"]]
    missing = await client.put(f"/api/v1/jobs/{job_id}/content", content=PDF)
    assert error_locs(missing) == [["query", "worker_id"]]


@pytest.mark.parametrize("name", ["worker_id", "filename"])
@pytest.mark.parametrize("bad", ["%ED%A0%80", "%FF", "%00"])  # a surrogate as WTF-8; not UTF-8; NUL
async def test_query_text_that_is_not_storable_utf8_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, storage: Path, name: str, bad: str
) -> None:
    """Starlette reads bytes that are not UTF-8 as U+FFFD: the value would be stored
    changed (a file name of three replacement characters), not refused."""
    job_id = await running(client)
    query = {"worker_id": "w1", "filename": "a.pdf"} | {name: f"x{bad}y"}
    url = f"/api/v1/jobs/{job_id}/content?" + "&".join(f"{k}={v}" for k, v in query.items())

    response = await client.put(url, content=PDF)

    assert error_locs(response) == [["query", name]]
    assert stored(storage) == []
    assert (await get(client, job_id))["file_name"] is None


@pytest.mark.parametrize("declared", [True, False])
async def test_put_content_over_the_upload_limit_is_413_and_stores_nothing(
    client: httpx.AsyncClient, container: Container, storage: Path, declared: bool
) -> None:
    container.limits.override(providers.Object(UploadLimits(max_file_bytes=len(PDF) - 1)))
    job_id = await running(client)

    async def undeclared() -> Any:
        yield PDF

    response = await put_content(client, job_id, PDF if declared else undeclared())

    assert_problem(response, 413, "payload-too-large")
    assert stored(storage) == []
    assert (await get(client, job_id))["file_size"] is None


async def test_a_put_whose_body_ends_early_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, storage: Path
) -> None:
    """The client goes away mid-body: 400 (for the log), and no file left behind."""
    job_id = await running(client)
    messages = [
        {"type": "http.request", "body": PDF[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"/api/v1/jobs/{job_id}/content",
        "raw_path": f"/api/v1/jobs/{job_id}/content".encode(),
        "query_string": b"worker_id=w1",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)

    assert sent[0]["status"] == 400
    assert stored(storage) == []
    assert (await get(client, job_id))["file_size"] is None


# -- redetect --------------------------------------------------------------------------------


async def test_redetect_detects_the_stored_content_again(client: httpx.AsyncClient) -> None:
    job_id = await running(client)
    await put_content(client, job_id, PDF, filename="a.pdf")

    response = await report(client, job_id, "redetect", mode="fast")

    assert response.status_code == 200, response.text
    assert response.json()["detection"]["detector"] == "libmagic"
    assert response.json()["mime_type"] == "application/pdf"


async def test_redetect_is_refused_without_content_lease_or_a_known_mode(
    client: httpx.AsyncClient,
) -> None:
    job_id = await running(client)

    assert_problem(await report(client, job_id, "redetect", mode="fast"), 404, "content-not-found")
    await put_content(client, job_id, PDF)
    refused = await report(client, job_id, "redetect", "w2", mode="fast")
    assert_problem(refused, 409, "lease-not-held")
    assert error_locs(await report(client, job_id, "redetect", mode="slow")) == [["body", "mode"]]
