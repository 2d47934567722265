"""The console in a real browser: Debian's Chromium, driven by Playwright, against real
`chute serve` processes on SQLite.

One Chromium serves the whole session; each test gets a fresh context (no cookies, no
cache) and page. One server without keys serves every module but those that need their
own (sign-in, screenshots); tests keep out of each other's way by putting their jobs in
queues of their own (`queue_name`) and filtering by them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
)

from tests.browser.console import Server
from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

# Debian's chromium, which `make test` installs (TEST_PACKAGES): Playwright's own
# browser download is not used.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Counts the live connections htmx opened on a page (tests.browser.console.following).
SSE_OPENS = (
    "document.addEventListener('htmx:sseOpen', () => {"
    " window.__sseOpens = (window.__sseOpens || 0) + 1 })"
)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (make test installs it as root)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def start_server(root: Path, **settings: str) -> AsyncIterator[Server]:
    """A `chute serve` on a new SQLite file under `root`, with an API client."""
    env = chute_env(sqlite_url(root / "chute.db"), root / "storage", **settings)
    process = ChuteServer(env, root / "server.log")
    await process.start()
    key = settings.get("api_keys")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with httpx.AsyncClient(base_url=process.base_url, headers=headers, timeout=10) as api:
            yield Server(process.base_url, api, process)
    finally:
        process.stop()


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The session's server, without keys: the console is open."""
    async for started in start_server(tmp_path_factory.mktemp("console")):
        yield started


@pytest.fixture
def queue_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Queue names of this test's own: `queue_name("a")` is `<test>-a`."""
    test = request.node.name.removeprefix("test_").replace("_", "-")[:50]
    return lambda suffix="q": f"{test}-{suffix}"


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    await context.add_init_script(SSE_OPENS)
    try:
        yield context
    finally:
        await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page that fails the test on any uncaught script error, and on anything the
    Content-Security-Policy refused (which would leave a part of the console dead)."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def refused(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(message.text)

    page.on("console", refused)
    yield page
    assert not errors, f"errors on the page: {errors}"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where screenshots go: CHUTE_SCREENSHOTS (`make screenshots`: docs/images), else
    the test's own folder."""
    folder = Path(os.environ.get("CHUTE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
