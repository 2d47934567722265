"""What users wrote into jobs, shown in Chromium as text and never run: markup in
metadata, file names, source URIs, progress messages and errors, on the list, on a
job's page (also when it arrives live), and in what the pages echo from their URL."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
from playwright.async_api import Dialog, Page, expect

from tests.browser.console import Server, claim, create_jobs, following, report

pytestmark = pytest.mark.slow

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
ALERT = "<svg/onload=alert(1)>"
URI = f"https://example.org/{SCRIPT}"


async def harmless(page: Page, dialogs: list[Dialog]) -> None:
    """Nothing ran and no markup of users' text became an element."""
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == []
    await expect(page.locator("main img, main svg, main script")).to_have_count(0)
    sources = await page.locator("script").evaluate_all("found => found.map(s => s.src)")
    assert all("/ui/static/" in source for source in sources), sources


async def test_markup_in_jobs_shows_as_text_and_never_runs(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    dialogs: list[Dialog] = []

    async def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog)
        await dialog.dismiss()

    page.on("dialog", refuse)
    named, referenced = await create_jobs(
        server.api,
        {
            "queue": queue,
            "file_name": IMG,
            "metadata": {"note": SCRIPT, "tag": IMG, "city": "Zürich & Genève"},
        },
        {"queue": queue, "source_uri": URI, "metadata": {"note": ALERT}},
    )

    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    await expect(page.locator(f"#job-{named['id']} td.source")).to_have_text(f"url: {IMG}")
    await expect(page.locator(f"#job-{referenced['id']} td.source")).to_have_text(f"url: {URI}")
    await harmless(page, dialogs)

    await page.goto(server.url(f"/ui/jobs/{named['id']}"))
    await expect(page.locator("section#job dl.facts")).to_contain_text(IMG)
    await expect(page.locator("#metadata")).to_contain_text(f'"note": "{SCRIPT}"')
    await expect(page.locator("#metadata")).to_contain_text('"tag": "<img src=x onerror=\\"')
    await expect(page.locator("#metadata")).to_contain_text('"city": "Zürich & Genève"')
    await harmless(page, dialogs)

    # A job's page while the markup arrives live, in a progress message and an error.
    await page.goto(server.url(f"/ui/jobs/{referenced['id']}"))
    await expect(page.locator("section#job dl.facts")).to_contain_text(URI)
    await expect(page.locator("#metadata")).to_contain_text(ALERT)
    await following(page)
    await claim(server.api, queue)
    await claim(server.api, queue)
    await report(server.api, referenced["id"], "heartbeat", progress=10, progress_message=IMG)
    await expect(page.locator("#progress")).to_contain_text(IMG)
    await report(server.api, referenced["id"], "fail", error=SCRIPT + ALERT, retryable=False)
    await expect(page.locator("#last-error")).to_have_text(SCRIPT + ALERT)
    await harmless(page, dialogs)

    # What the pages echo from their address: the list's filters, a jump to no job.
    await page.goto(server.url(f"/ui/jobs?queue={queue}&metadata=note%3D{quote(ALERT)}"))
    await expect(page.get_by_label("Metadata", exact=True)).to_have_value(f"note={ALERT}")
    await harmless(page, dialogs)
    await page.goto(server.url(f"/ui/jump?id={quote(IMG)}"))
    await expect(page.get_by_role("alert")).to_contain_text(IMG)
    await harmless(page, dialogs)
    await page.goto(server.url(f"/ui/jobs?queue={quote(SCRIPT)}"))
    await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_label("Queue", exact=True)).to_have_value(SCRIPT)
    await harmless(page, dialogs)
