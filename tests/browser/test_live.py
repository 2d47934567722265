"""Live updates in Chromium: a job's page and the list's rows follow the job through
/ui/live (Server-Sent Events swapped in by htmx) while a worker claims it, reports
progress and completes it, all without the page being loaded again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from chute.entrypoints.http.console.pages import LIVE_SLACK
from playwright.async_api import Page, Route, expect

from tests.browser.console import (
    Server,
    claim,
    create_jobs,
    following,
    mark,
    marked,
    report,
)

pytestmark = pytest.mark.slow


async def test_a_jobs_page_follows_the_job_live(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    (job,) = await create_jobs(server.api, {"queue": queue})
    await page.goto(server.url(f"/ui/jobs/{job['id']}"))
    await expect(page.locator("#status")).to_have_text("pending")
    await expect(page.locator("#progress")).to_have_text("—")
    await following(page)
    await mark(page)

    await claim(server.api, queue)
    await expect(page.locator("#status")).to_have_text("running")
    await report(server.api, job["id"], "heartbeat", progress=40, progress_message="OCR")
    await expect(page.locator("#progress")).to_contain_text("40%")
    await expect(page.locator("#progress progress")).to_have_attribute("value", "40")
    await report(server.api, job["id"], "complete", result={"pages": 3})
    await expect(page.locator("#status")).to_have_text("completed")
    await expect(page.locator("#result")).to_contain_text('"pages": 3')
    # The timeline is part of what is swapped in: created, claimed, completed.
    await expect(page.locator("#timeline tbody tr")).to_have_count(3)
    await expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    assert await marked(page), "the page was loaded again"


async def test_a_row_of_the_list_follows_its_job_live(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    first, second = await create_jobs(server.api, {"queue": queue}, {"queue": queue})
    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    row = page.locator(f"#job-{first['id']}")
    other = page.locator(f"#job-{second['id']}")
    await expect(row.locator(".status")).to_have_text("pending")
    await following(page)
    await mark(page)

    (claimed,) = await claim(server.api, queue)
    assert claimed["id"] == first["id"]  # the oldest first
    await expect(row.locator(".status")).to_have_text("running")
    await expect(row).to_contain_text("1/3")
    await report(server.api, first["id"], "heartbeat", progress=40)
    await expect(row.locator("progress")).to_have_attribute("value", "40")
    await expect(row).to_contain_text("40%")
    await report(server.api, first["id"], "fail", error="timeout", retryable=False)
    await expect(row.locator(".status")).to_have_text("failed")
    # The other row did not change, and the swapped row can still be selected.
    await expect(other.locator(".status")).to_have_text("pending")
    await expect(row.locator("input[name=id]")).to_have_attribute("form", "bulk")
    assert await marked(page), "the page was loaded again"


async def test_a_checked_box_stays_checked_when_its_row_changes_live(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    """A selection is the user's: the swap of a row by the live feed must not undo it
    (before hx-preserve it did, and "Cancel selected" then missed that job)."""
    queue = queue_name("q")
    first, second = await create_jobs(server.api, {"queue": queue}, {"queue": queue})
    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    row = page.locator(f"#job-{first['id']}")
    await following(page)
    await row.locator("input[name=id]").check()

    await claim(server.api, queue)
    await expect(row.locator(".status")).to_have_text("running")
    await expect(row.locator("input[name=id]")).to_be_checked()
    await expect(page.locator(f"#job-{second['id']} input[name=id]")).not_to_be_checked()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Cancel selected").click()
    await expect(page.locator("#changed")).to_have_text("1")
    job = (await server.api.get(f"/api/v1/jobs/{first['id']}")).json()
    assert job["status"] == "cancelling"


async def test_what_changes_while_a_page_connects_is_not_lost(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    """The page is read, then its scripts open /ui/live: a change in between (here, the
    connection held back for a second) must still reach the page."""
    queue = queue_name("q")
    first, second = await create_jobs(server.api, {"queue": queue}, {"queue": queue})
    created = time.monotonic()
    held: list[str] = []
    released: list[str] = []

    async def hold(route: Route) -> None:
        held.append(route.request.url)
        await asyncio.sleep(1)
        released.append(route.request.url)
        await route.continue_()

    await page.route("**/ui/live?**", hold)
    await page.goto(server.url(f"/ui/jobs/{first['id']}"))
    await expect(page.locator("#status")).to_have_text("pending")
    assert len(held) == 1 and not released
    await claim(server.api, queue)  # while the live connection is held back
    await expect(page.locator("#status")).to_have_text("running")

    # The other job's last change is to be older than the page by more than the slack
    # the live connection allows, so that it is not sent again.
    await asyncio.sleep(created + LIVE_SLACK.total_seconds() + 0.2 - time.monotonic())
    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    row, other = page.locator(f"#job-{first['id']}"), page.locator(f"#job-{second['id']}")
    await expect(row.locator(".status")).to_have_text("running")
    await expect(other.locator(".status")).to_have_text("pending")
    await other.locator("input[name=id]").check()
    assert len(held) == 2 and len(released) == 1
    await report(server.api, first["id"], "complete")  # while held back again
    await expect(row.locator(".status")).to_have_text("completed")
    # A row that did not change is left as it is, with its box still ticked.
    await following(page)
    await expect(other.locator("input[name=id]")).to_be_checked()
