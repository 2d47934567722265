"""Signing in to the console in Chromium, on a server with CHUTE_API_KEYS: every page
sends the browser to the sign-in page and shows nothing of the jobs; a wrong key is
refused; the right one leads to the page asked for, with a cookie that scripts cannot
read and other sites' pages do not send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import start_server
from tests.browser.console import Server, create_jobs, row_ids

pytestmark = pytest.mark.slow

KEY = "chute_browser-sign-in-test-key-0123456789abcdef"
QUEUE = "signed-in-only"


@pytest.fixture(scope="module")
async def keyed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    async for server in start_server(tmp_path_factory.mktemp("keyed"), api_keys=KEY):
        yield server


async def test_the_console_asks_for_a_key_and_keeps_a_strict_cookie(
    keyed: Server, context: BrowserContext, page: Page
) -> None:
    (job,) = await create_jobs(keyed.api, {"queue": QUEUE, "file_name": "secret-plan.pdf"})
    asked = f"/ui/jobs?queue={QUEUE}"

    for path in (asked, f"/ui/jobs/{job['id']}", "/ui"):
        await page.goto(keyed.url(path))
        assert urlsplit(page.url).path == "/ui/login", path
        assert parse_qs(urlsplit(page.url).query)["next"] == [path]
        await expect(page.locator("h1")).to_have_text("Sign in")
        # Nothing of the job, but what the address asked for (kept to go on to it).
        html, text = await page.content(), await page.locator("body").inner_text()
        for secret in (job["id"], "secret-plan", QUEUE):
            assert secret not in text, (path, secret)
            assert secret in path or secret not in html, (path, secret)
        await expect(page.locator("table, #status, #job")).to_have_count(0)
    await page.goto(keyed.url(asked))

    await page.locator("#key").fill("chute_not-the-key-0123456789abcdef0123456789")
    async with page.expect_response(
        lambda r: urlsplit(r.url).path == "/ui/login" and r.request.method == "POST"
    ) as refused:
        await page.get_by_role("button", name="Sign in").click()
    assert (await refused.value).status == 401
    await expect(page.get_by_role("alert")).to_have_text("That is not a key.")
    assert await context.cookies() == []
    assert job["id"] not in await page.content()

    await page.locator("#key").fill(KEY)
    async with page.expect_navigation(url=keyed.url(asked)):
        await page.get_by_role("button", name="Sign in").click()
    assert await row_ids(page) == [job["id"]]
    await expect(page.locator(f"#job-{job['id']}")).to_contain_text("secret-plan.pdf")

    (cookie,) = await context.cookies()
    assert cookie["name"] == "chute_session"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ui"
    assert KEY not in cookie["value"]
    assert await page.evaluate("document.cookie") == ""

    # Signed in, the other pages open too; signing out closes them again.
    await page.goto(keyed.url(f"/ui/jobs/{job['id']}"))
    await expect(page.locator("#status")).to_have_text("pending")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Sign out").click()
    assert urlsplit(page.url).path == "/ui/login"
    assert await context.cookies() == []
    await page.goto(keyed.url(asked))
    assert urlsplit(page.url).path == "/ui/login"
