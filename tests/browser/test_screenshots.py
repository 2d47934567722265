"""Screenshots of the console for its documentation (`make screenshots` writes them to
docs/images): the overview, the job list and a job's page, on a server of their own
with a plausible day's jobs in several queues and every status."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests import corpus
from tests.browser.conftest import start_server
from tests.browser.console import Server, claim, jobs_in, report

pytestmark = pytest.mark.slow

SIZE = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """A server whose failed attempts come back at once, so that a job can be retried."""
    root = tmp_path_factory.mktemp("screenshots")
    async for server in start_server(root, retry_base_seconds="0.05", retry_cap_seconds="0.1"):
        yield server


def scan(name: str, customer: str, size: int, **fields: Any) -> dict[str, Any]:
    return {
        "source_uri": f"https://files.example.com/scans/{name}",
        "file_name": name,
        "file_size": size,
        "mime_type": "application/pdf",
        "metadata": {"customer": customer, "batch": "2026-12-06"},
    } | fields


def video(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "source_type": "s3",
        "source_uri": f"s3://media-archive/raw/{name}",
        "mime_type": "video/mp4",
        "metadata": {"channel": "webinars"},
    } | fields


def image(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "source_uri": f"https://cdn.example.com/products/{name}",
        "file_name": name,
        "mime_type": "image/jpeg",
        "metadata": {"sku": name.split(".")[0]},
    } | fields


async def worked_invoice(server: Server) -> str:
    """An uploaded invoice that failed once and completed on its second attempt."""
    data = {"queue": "ingest", "priority": "high", "metadata": json.dumps(SHOWN_METADATA)}
    files = {"file": ("invoice-2026-1187.pdf", corpus.pdf(), "application/pdf")}
    response = await server.api.post("/api/v1/upload", data=data, files=files)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["jobs"][0]["id"]
    await claim(server.api, "ingest", worker="worker-a1")
    await report(server.api, job_id, "heartbeat", "worker-a1", progress=45)
    await report(server.api, job_id, "fail", "worker-a1", error="OCR service timed out")
    deadline = time.monotonic() + 10
    while not await claim(server.api, "ingest", worker="worker-b2"):
        assert time.monotonic() < deadline, "the failed attempt never came back"
        await asyncio.sleep(0.05)
    await report(server.api, job_id, "heartbeat", "worker-b2", progress=100)
    result = {"pages": 1, "language": "en", "words": 212, "total": "1,187.40 EUR"}
    await report(server.api, job_id, "complete", "worker-b2", result=result)
    return job_id


SHOWN_METADATA = {"customer": "acme-corp", "batch": "2026-12-06", "source": "mailroom"}


async def a_day_of_jobs(server: Server) -> str:
    shown = await worked_invoice(server)
    ingest = await jobs_in(
        server.api,
        "ingest",
        ("running", scan("contract-0932.pdf", "acme-corp", 482_113)),
        ("running", scan("statement-2026-11.pdf", "globex", 91_870)),
        ("completed", scan("invoice-2026-1186.pdf", "acme-corp", 73_511)),
        ("completed", scan("invoice-2026-1185.pdf", "initech", 68_002)),
        ("failed", scan("scan-broken-0007.pdf", "globex", 12)),
        ("pending", scan("delivery-note-5521.pdf", "initech", 33_410)),
        ("pending", scan("invoice-2026-1188.pdf", "acme-corp", 70_950, priority="high")),
        ("cancelled", scan("duplicate-0931.pdf", "acme-corp", 482_113)),
    )
    await report(server.api, ingest[0]["id"], "heartbeat", progress=70, progress_message="OCR")
    await report(server.api, ingest[1]["id"], "heartbeat", progress=15)
    thumbnails = await jobs_in(
        server.api,
        "thumbnails",
        ("completed", image("chair-oak-01.jpg")),
        ("completed", image("chair-oak-02.jpg")),
        ("running", image("lamp-brass-01.jpg")),
        *[("pending", image(f"table-walnut-{n:02}.jpg", priority="low")) for n in range(1, 5)],
    )
    await report(server.api, thumbnails[2]["id"], "heartbeat", progress=90)
    transcode = await jobs_in(
        server.api,
        "transcode",
        ("running", video("webinar-2026-12-03.mov", mode="accurate")),
        ("failed", video("webinar-2026-11-26.mov", mode="accurate")),
        ("pending", video("webinar-2026-12-05.mov", mode="accurate")),
    )
    await report(server.api, transcode[0]["id"], "heartbeat", progress=33)
    await jobs_in(server.api, "ocr", ("pending", scan("letter-1990-04.pdf", "archive", 2_301_221)))
    for queue, change in (("transcode", {"concurrency_limit": 2}), ("ocr", {"paused": True})):
        response = await server.api.patch(f"/api/v1/queues/{queue}", json=change)
        assert response.status_code == 200, response.text
    return shown


async def test_screenshots_of_the_console(
    shop: Server, browser: Browser, screenshots: Path
) -> None:
    shown = await a_day_of_jobs(shop)
    context = await browser.new_context(viewport=SIZE, device_scale_factor=1)
    try:
        page = await context.new_page()
        await page.goto(shop.url("/ui"))
        await expect(page.locator("#queue-ocr .state")).to_have_text("paused")
        await page.screenshot(path=screenshots / "console-overview.png")

        await page.goto(shop.url("/ui/jobs"))
        await expect(page.locator("#count")).to_have_text("20 jobs match")
        await page.screenshot(path=screenshots / "console-jobs.png", full_page=True)

        await page.goto(shop.url(f"/ui/jobs/{shown}"))
        await expect(page.locator("#status")).to_have_text("completed")
        await expect(page.locator("#timeline tbody tr")).to_have_count(5)
        await expect(page.locator("#detection")).to_contain_text("application/pdf")
        await page.screenshot(path=screenshots / "console-job.png", full_page=True)
    finally:
        await context.close()
    for name in ("console-overview.png", "console-jobs.png", "console-job.png"):
        assert (screenshots / name).read_bytes().startswith(b"\x89PNG"), name
