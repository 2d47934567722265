"""What workers read and what happens behind them: job events, stored content, the rescuer.

On memory and on SQLite, with files on a real storage folder. The app runs on a
`ManualClock`; its periodic rescuer is off except in the tests of the rescuer.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from chute.adapters.storage.local import LocalFileStore
from chute.adapters.system import ManualClock
from chute.application import FileStore, OrchestrationEngine, UploadFile, UploadOptions
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.http.downloads import content_disposition
from dependency_injector import providers

from tests import corpus
from tests.e2e.helpers import CLOCK_START, assert_problem, at, claim_one, create_job, get, report

START = CLOCK_START
# The app's clock is a manual one (the conftest's `clock`), set before the app starts.
pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


async def upload(
    client: httpx.AsyncClient, name: str, data: bytes, **fields: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/upload", files=[("file", (name, data, "application/octet-stream"))], data=fields
    )
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()["jobs"][0]
    return job


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- events ----------------------------------------------------------------------------------


def history(response: httpx.Response) -> list[tuple[Any, ...]]:
    assert response.status_code == 200
    assert set(response.json()) == {"items"}
    return [
        (at(e["at"]) - START, e["from_status"], e["to_status"], e["actor"], e["detail"])
        for e in response.json()["items"]
    ]


async def test_a_new_job_has_one_event_its_creation(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    response = await client.get(f"/api/v1/jobs/{job['id']}/events")

    assert response.json()["items"] == [
        {
            "at": "2026-11-29T12:00:00.000000Z",
            "from_status": None,
            "to_status": "pending",
            "actor": "client",
            "detail": None,
        }
    ]


async def test_events_list_every_status_change_oldest_first_with_its_actor(
    client: httpx.AsyncClient, clock: ManualClock, engine: OrchestrationEngine
) -> None:
    job = await create_job(client)
    clock.advance(1)
    await claim_one(client, "w1")
    clock.advance(1)
    await report(client, job["id"], "heartbeat")  # no status change: no event
    await report(client, job["id"], "fail", "w1", error="timeout")
    clock.advance(2)
    await claim_one(client, "w2", lease_seconds=5)
    clock.advance(6)
    await engine.rescue_expired_leases()
    clock.advance(1)
    await client.delete(f"/api/v1/jobs/{job['id']}")
    clock.advance(1)
    await client.post(f"/api/v1/jobs/{job['id']}/retry")

    response = await client.get(f"/api/v1/jobs/{job['id']}/events")

    s = timedelta(seconds=1)
    assert history(response) == [
        (0 * s, None, "pending", "client", None),
        (1 * s, "pending", "running", "w1", None),
        (2 * s, "running", "pending", "w1", "timeout"),
        (4 * s, "pending", "running", "w2", None),
        (10 * s, "running", "pending", "rescuer", "lease expired"),
        (11 * s, "pending", "cancelled", "client", None),
        (12 * s, "cancelled", "pending", "client", None),
    ]


async def test_events_of_a_cancelled_running_job_end_with_the_worker(
    client: httpx.AsyncClient,
) -> None:
    job = await create_job(client)
    await claim_one(client, "w1")
    await client.delete(f"/api/v1/jobs/{job['id']}")
    await report(client, job["id"], "complete", "w1", result={"ok": True})

    response = await client.get(f"/api/v1/jobs/{job['id']}/events")

    assert [(f, t, a) for _, f, t, a, _ in history(response)] == [
        (None, "pending", "client"),
        ("pending", "running", "w1"),
        ("running", "cancelling", "client"),
        ("cancelling", "completed", "w1"),
    ]


# -- content ---------------------------------------------------------------------------------


async def test_an_uploaded_file_streams_back_byte_identical_with_its_headers(
    client: httpx.AsyncClient,
) -> None:
    data = corpus.pdf() + os.urandom(300 * 1024)  # several chunks of the file store
    job = await upload(client, "report.pdf", data)
    assert job["mime_type"] == "application/pdf"
    await claim_one(client)  # what a remote worker does first

    response = await client.get(f"/api/v1/jobs/{job['id']}/content")

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(data)) == str(job["file_size"])
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-request-id"]


async def test_content_without_a_type_is_served_as_octet_stream(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    file = UploadFile(filename=None, content=one_chunk(b"\x00\x01\x02"))
    [job] = await engine.submit_upload([file], UploadOptions(detect=False))
    assert job.mime_type is None

    response = await client.get(f"/api/v1/jobs/{job.id}/content")

    assert (response.status_code, response.content) == (200, b"\x00\x01\x02")
    assert response.headers["content-type"] == "application/octet-stream"
    assert 'filename="upload.bin"' in response.headers["content-disposition"]


async def test_text_content_gets_no_charset_it_may_not_be_in(client: httpx.AsyncClient) -> None:
    job = await upload(client, "notes.txt", "café\n".encode("latin-1"))
    assert job["mime_type"] == "text/plain"

    response = await client.get(f"/api/v1/jobs/{job['id']}/content")

    assert response.headers["content-type"] == "text/plain"
    assert response.content == "café\n".encode("latin-1")


async def test_a_name_with_quotes_unicode_and_semicolons_cannot_break_the_header(
    client: httpx.AsyncClient, engine: OrchestrationEngine
) -> None:
    name = 'rapport "final"; été 日本 100%.pdf'
    file = UploadFile(filename=name, content=one_chunk(corpus.pdf()))
    [job] = await engine.submit_upload([file])
    assert job.file_name == name

    response = await client.get(f"/api/v1/jobs/{job.id}/content")

    header = response.headers["content-disposition"]
    assert header.startswith('attachment; filename="rapport _final_; _t_ __ 100_.pdf"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded, errors="strict") == name
    assert all(c.isalnum() or c in "%!#$&+-.^_`|~" for c in encoded)
    assert disposition(header) == {
        "filename": "rapport _final_; _t_ __ 100_.pdf",
        "filename*": name,
    }


def disposition(header: str) -> dict[str, str]:
    """The parameters a standard MIME parser reads from a Content-Disposition header,
    `filename*` decoded from RFC 8187."""
    message = email.message.Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition")
    assert params is not None and params[0] == ("attachment", "")
    found = {}
    for key, value in params[1:]:
        if isinstance(value, tuple):
            found[f"{key}*"] = email.utils.collapse_rfc2231_value(value)
        else:
            found[key] = value
    return found


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ('a"; filename="evil.exe', 'a"; filename="evil.exe'),
        ("line\r\nSet-Cookie: x=1", "lineSet-Cookie: x=1"),
        ("back\\slash", "slash"),
        ("..\\..\\etc/passwd", "passwd"),
        ("tab\there.txt", "tabhere.txt"),
        ("\u202eexe.pdf", "\u202eexe.pdf"),
        ("", "upload.bin"),
        (None, "upload.bin"),
    ],
)
def test_content_disposition_keeps_any_name_inside_its_parameters(
    name: str | None, expected: str
) -> None:
    header = content_disposition(name)

    params = disposition(header)
    assert params.keys() == {"filename", "filename*"}  # nothing injected
    assert params["filename*"] == expected
    assert all(0x20 <= ord(c) < 0x7F and c not in '"\\%' for c in params["filename"])
    assert header.count('"') == 2 and "\r" not in header and "\n" not in header


async def test_a_url_job_has_no_content(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    response = await client.get(f"/api/v1/jobs/{job['id']}/content")

    assert_problem(response, 404, "content-not-found")


async def test_content_gone_from_storage_is_a_404_before_any_byte_is_sent(
    client: httpx.AsyncClient, storage: Path
) -> None:
    job = await upload(client, "report.pdf", corpus.pdf())
    shutil.rmtree(storage / job["source_uri"].removeprefix("upload://").split("/")[0])

    response = await client.get(f"/api/v1/jobs/{job['id']}/content")

    body = assert_problem(response, 404, "content-not-found")
    assert "report.pdf" not in body["detail"]  # names the job, not the storage key


# -- the periodic rescuer --------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_app_takes_back_expired_leases_by_itself(
    container: Container, clock: ManualClock
) -> None:
    container.config.rescue_interval_seconds.from_value(0.05)
    app = create_app(container)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        retried = await create_job(client)
        lost = await create_job(client, max_attempts=1)
        stopped = await create_job(client)
        for _ in range(3):
            await claim_one(client, "w1", lease_seconds=5)
        await client.delete(f"/api/v1/jobs/{stopped['id']}")
        clock.advance(6)

        async def all_back() -> bool:
            return (await get(client, stopped["id"]))["status"] == "cancelled"

        await eventually(all_back)
        jobs = {name: await get(client, job["id"]) for name, job in
                [("retried", retried), ("lost", lost), ("stopped", stopped)]}  # fmt: skip
        events = (await client.get(f"/api/v1/jobs/{retried['id']}/events")).json()["items"]

    assert {name: job["status"] for name, job in jobs.items()} == {
        "retried": "pending", "lost": "failed", "stopped": "cancelled",
    }  # fmt: skip
    assert jobs["lost"]["last_error"] == "lease expired"
    assert jobs["retried"]["worker_id"] is None
    assert (events[-1]["actor"], events[-1]["detail"]) == ("rescuer", "lease expired")


class StandInEngine:
    """Counts rescue rounds; the first fails the way a database that is away would."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.calls = 0
        self.sweeps: list[timedelta] = []
        self.fail_first = fail_first

    async def sweep_orphans(self, *, grace: timedelta) -> int:
        self.sweeps.append(grace)
        return 0

    async def rescue_expired_leases(self, *, limit: int = 100) -> list[object]:
        self.calls += 1
        if self.fail_first and self.calls == 1:
            raise ConnectionError("database away")
        return []


async def run_app(container: Container, maintenance: bool, until: Callable[[], bool]) -> None:
    """Serve with a rescue round every 10 ms until `until()` holds, or for half a second."""
    container.config.rescue_interval_seconds.from_value(0.01)
    app = create_app(container, maintenance=maintenance)
    async with app.router.lifespan_context(app):
        for _ in range(25):
            if until():
                break
            await asyncio.sleep(0.02)


async def test_a_failed_rescue_is_logged_and_the_rounds_go_on(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    engine = StandInEngine(fail_first=True)
    container.engine.override(providers.Object(engine))

    with caplog.at_level(logging.ERROR, logger="chute.maintenance"):
        await run_app(container, True, lambda: engine.calls >= 3)

    assert engine.calls >= 3
    failures = [r for r in caplog.records if r.getMessage() == "rescue.failed"]
    assert len(failures) == 1 and failures[0].exc_info is not None
    calls = engine.calls
    await asyncio.sleep(0.05)
    assert engine.calls == calls  # the rescuer stopped with the app


async def test_the_rescuer_can_be_turned_off(container: Container) -> None:
    engine = StandInEngine()
    container.engine.override(providers.Object(engine))

    await run_app(container, False, lambda: engine.calls > 0)

    assert engine.calls == 0 and engine.sweeps == []


async def test_orphans_are_swept_at_start_with_the_configured_grace(
    container: Container,
) -> None:
    engine = StandInEngine()
    container.engine.override(providers.Object(engine))
    container.config.orphan_grace_seconds.from_value(90)

    await run_app(container, True, lambda: bool(engine.sweeps))

    assert engine.sweeps == [timedelta(seconds=90)]  # once at start; next in an hour
