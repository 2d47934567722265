"""Actions from the console in Chromium: retrying every job a filter matches after a
confirmation, and pausing, resuming and limiting a queue from the overview. Each is
checked through the API afterwards, not by the page that reports it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.async_api import Page, expect

from tests.browser.console import Server, jobs_in, row_ids

pytestmark = pytest.mark.slow


async def test_retry_all_that_match_asks_first_then_retries_each(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    jobs = await jobs_in(
        server.api, queue, *[("failed", {})] * 30, ("completed", {}), ("pending", {})
    )
    failed = {job["id"] for job in jobs[:30]}

    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    await expect(page.locator("#count")).to_have_text("32 jobs match")
    await page.get_by_role("checkbox", name="failed", exact=True).check()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Filter", exact=True).click()
    await expect(page.locator("#count")).to_have_text("30 jobs match")
    assert set(await row_ids(page)) == failed

    async with page.expect_navigation():
        await page.get_by_role("button", name="Retry all", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Retry all 30 jobs that match?")
    # Nothing has changed yet.
    listed = await server.api.get("/api/v1/jobs", params={"queue": queue, "status": "failed"})
    assert listed.json()["total"] == 30

    async with page.expect_navigation():
        await page.get_by_role("button", name="Yes, retry them").click()
    await expect(page.locator("#matched")).to_have_text("30")
    await expect(page.locator("#changed")).to_have_text("30")
    await expect(page.locator("#unchanged")).to_have_text("0")

    listed = await server.api.get(
        "/api/v1/jobs", params={"queue": queue, "status": "pending", "limit": 100}
    )
    pending = {job["id"] for job in listed.json()["items"]}
    assert pending == failed | {jobs[31]["id"]}
    completed = await server.api.get(f"/api/v1/jobs/{jobs[30]['id']}")
    assert completed.json()["status"] == "completed"

    # Back to the same filtered list, which no job matches any more.
    async with page.expect_navigation():
        await page.get_by_role("link", name="Back to the jobs").click()
    await expect(page.locator("#count")).to_have_text("0 jobs match")
    await expect(page.get_by_role("checkbox", name="failed", exact=True)).to_be_checked()


async def test_a_queue_is_paused_resumed_and_limited_from_the_overview(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    await jobs_in(server.api, queue, ("pending", {}), ("running", {}))

    async def state() -> dict[str, object]:
        response = await server.api.get(f"/api/v1/queues/{queue}")
        assert response.status_code == 200, response.text
        found: dict[str, object] = response.json()
        return found

    await page.goto(server.url("/ui"))
    row = page.locator(f"#queue-{queue}")
    await expect(row.locator(".state")).to_have_text("running")
    await expect(row.locator("td").nth(0)).to_have_text("1")  # pending
    await expect(row.locator("td").nth(2)).to_have_text("1")  # running
    assert (await state())["paused"] is False

    async with page.expect_navigation():
        await row.get_by_role("button", name="Pause").click()
    await expect(row.locator(".state")).to_have_text("paused")
    assert (await state())["paused"] is True

    async with page.expect_navigation():
        await row.get_by_role("button", name="Resume").click()
    await expect(row.locator(".state")).to_have_text("running")
    assert (await state())["paused"] is False

    await row.get_by_label(f"Concurrency limit of {queue}").fill("5")
    async with page.expect_navigation():
        await row.get_by_role("button", name="Set").click()
    assert (await state())["concurrency_limit"] == 5
    await expect(row.get_by_label(f"Concurrency limit of {queue}")).to_have_value("5")
    await row.get_by_label(f"Concurrency limit of {queue}").fill("")
    async with page.expect_navigation():
        await row.get_by_role("button", name="Set").click()
    assert (await state())["concurrency_limit"] is None


async def test_selected_rows_are_cancelled_and_the_box_above_selects_them_all(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    """The rows' boxes stand outside form#bulk (form="bulk" ties them to it)."""
    queue = queue_name("q")
    jobs = await jobs_in(server.api, queue, *[("pending", {})] * 4)
    chosen, left = [job["id"] for job in jobs[:2]], [job["id"] for job in jobs[2:]]

    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    for job_id in chosen:
        await page.locator(f"#job-{job_id} input[name=id]").check()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Cancel selected").click()
    await expect(page.locator("#changed")).to_have_text("2")
    for job_id in chosen:
        assert (await server.api.get(f"/api/v1/jobs/{job_id}")).json()["status"] == "cancelled"
    for job_id in left:
        assert (await server.api.get(f"/api/v1/jobs/{job_id}")).json()["status"] == "pending"

    async with page.expect_navigation():
        await page.get_by_role("link", name="Back to the jobs").click()
    await page.get_by_label("select every job on this page").check()
    await expect(page.locator("tbody input[name=id]:checked")).to_have_count(4)
    async with page.expect_navigation():
        await page.get_by_role("button", name="Retry selected").click()
    await expect(page.locator("#matched")).to_have_text("4")
    await expect(page.locator("#changed")).to_have_text("2")  # the pending ones stay
    await expect(page.locator("#unchanged")).to_have_text("2")
