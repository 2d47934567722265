"""The job list and a job's page in Chromium: filters that stay in the URL, cursor paging,
opening a job by its link and by the jump box, the filters by keyboard alone, and the
list on a phone's screen."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.console import (
    Server,
    claim,
    create_jobs,
    get_job,
    jobs_in,
    report,
    row_ids,
)

pytestmark = pytest.mark.slow


async def test_filters_show_exactly_the_matching_jobs_and_stay_in_the_url(
    server: Server, browser: Browser, page: Page, queue_name: Callable[[str], str]
) -> None:
    a, b = queue_name("a"), queue_name("b")
    acme, globex = {"metadata": {"customer": "acme"}}, {"metadata": {"customer": "globex"}}
    every = await jobs_in(
        server.api,
        a,
        ("pending", acme),
        ("running", acme),
        ("failed", acme),
        ("failed", globex),
        ("completed", acme),
        ("cancelled", globex),
    )
    every += await jobs_in(server.api, b, ("running", globex), ("failed", acme), ("pending", acme))

    def matching(statuses: set[str], customer: str | None = None) -> set[str]:
        return {
            job["id"]
            for job in every
            if job["status"] in statuses and customer in (None, job["metadata"]["customer"])
        }

    await page.goto(server.url("/ui/jobs"))
    await page.get_by_label("Queue", exact=True).fill(f"{a} {b}")
    await page.get_by_role("checkbox", name="running", exact=True).check()
    await page.get_by_role("checkbox", name="failed", exact=True).check()
    await page.get_by_label("Metadata", exact=True).fill("customer=acme")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Filter", exact=True).click()

    wanted = matching({"running", "failed"}, "acme")
    assert len(wanted) == 3
    assert sorted(await row_ids(page)) == sorted(wanted)
    await expect(page.locator("#count")).to_have_text("3 jobs match")
    query = parse_qs(urlsplit(page.url).query)
    assert query["status"] == ["running", "failed"]
    assert query["queue"] == [f"{a} {b}"]
    assert query["metadata"] == ["customer=acme"]
    # The form shows the filters it was sent with.
    await expect(page.get_by_role("checkbox", name="failed", exact=True)).to_be_checked()
    await expect(page.get_by_role("checkbox", name="pending", exact=True)).not_to_be_checked()
    await expect(page.get_by_label("Metadata", exact=True)).to_have_value("customer=acme")

    # Bookmarkable: the same URL in a new browser context shows the same rows.
    fresh = await browser.new_context()
    try:
        other = await fresh.new_page()
        await other.goto(page.url)
        assert await row_ids(other) == await row_ids(page)
    finally:
        await fresh.close()

    # Another filter from the same form: clear the statuses, change the metadata.
    await page.get_by_role("checkbox", name="running", exact=True).uncheck()
    await page.get_by_role("checkbox", name="failed", exact=True).uncheck()
    await page.get_by_label("Metadata", exact=True).fill("customer=globex")
    async with page.expect_navigation():
        await page.get_by_label("Metadata", exact=True).press("Enter")
    wanted = matching({"pending", "running", "failed", "completed", "cancelled"}, "globex")
    assert len(wanted) == 3
    assert sorted(await row_ids(page)) == sorted(wanted)
    assert "status" not in parse_qs(urlsplit(page.url).query)


async def test_cursor_paging_shows_every_job_once(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    created = await create_jobs(server.api, *({"queue": queue} for _ in range(120)))

    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    await expect(page.locator("#count")).to_have_text("120 jobs match")
    first = await row_ids(page)
    await expect(page.get_by_role("link", name="First page")).to_have_count(0)
    # Ids made in the same millisecond start alike (UUIDv7): what the rows show of
    # them must still tell the rows apart, and be part of the id.
    shown = await page.locator("tbody tr td:nth-child(2) a").all_inner_texts()
    assert len(set(shown)) == len(shown) == 50, shown[:5]
    for text, job_id in zip(shown, first, strict=True):
        assert text.strip("…") in job_id, (text, job_id)
    pages = [first]
    for expected in (50, 20):
        async with page.expect_navigation():
            await page.get_by_role("link", name="Next page").click()
        pages.append(await row_ids(page))
        assert len(pages[-1]) == expected
    await expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    async with page.expect_navigation():
        await page.get_by_role("link", name="First page").click()
    assert await row_ids(page) == first

    seen = [job_id for shown in pages for job_id in shown]
    assert len(first) == 50
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == {job["id"] for job in created}
    # Newest first, as the list API sorts by default.
    listed = await server.api.get("/api/v1/jobs", params={"queue": queue, "limit": 50})
    assert first == [job["id"] for job in listed.json()["items"]]


async def test_a_job_opens_from_its_row_and_from_the_jump_box(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    (job,) = await create_jobs(
        server.api,
        {"queue": queue, "file_name": "invoice-0042.pdf", "metadata": {"customer": "acme"}},
    )
    await claim(server.api, queue)
    await report(server.api, job["id"], "heartbeat", progress=30, progress_message="page 3 of 10")
    events = (await server.api.get(f"/api/v1/jobs/{job['id']}/events")).json()["items"]
    assert len(events) == 2  # created (pending), claimed (running)

    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    async with page.expect_navigation():
        await page.locator(f"#job-{job['id']} a").click()
    assert urlsplit(page.url).path == f"/ui/jobs/{job['id']}"
    await shows_the_job(page, job["id"], queue, len(events))

    # The jump box of every page's header, with spaces around the id.
    await page.goto(server.url("/ui"))
    await page.get_by_placeholder("Jump to a job id").fill(f"  {job['id']} ")
    async with page.expect_navigation():
        await page.get_by_placeholder("Jump to a job id").press("Enter")
    assert urlsplit(page.url).path == f"/ui/jobs/{job['id']}"
    await shows_the_job(page, job["id"], queue, len(events))

    await page.get_by_placeholder("Jump to a job id").fill("not-an-id")
    async with page.expect_navigation():
        await page.get_by_role("button", name="Open", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Not a job id")
    await expect(page.get_by_role("alert")).to_contain_text("'not-an-id' is not a job id")


async def shows_the_job(page: Page, job_id: str, queue: str, events: int) -> None:
    await expect(page.locator("h1")).to_have_text(f"Job {job_id}")
    await expect(page.locator("#status")).to_have_text("running")
    await expect(page.locator("#progress")).to_contain_text("30%")
    await expect(page.locator("#progress")).to_contain_text("page 3 of 10")
    facts = page.locator("section#job dl.facts")
    for text in (queue, "invoice-0042.pdf", "https://example.org/report.pdf", "1 of 3", "w1"):
        await expect(facts).to_contain_text(text)
    await expect(page.locator("#metadata")).to_contain_text('"customer": "acme"')
    rows = page.locator("#timeline tbody tr")
    await expect(rows).to_have_count(events)
    await expect(rows.nth(0)).to_contain_text("pending")
    await expect(rows.nth(1).locator("td").nth(1)).to_have_text("pending")
    await expect(rows.nth(1).locator("td").nth(2)).to_have_text("running")


async def test_the_filters_work_with_the_keyboard_alone(
    server: Server, page: Page, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    pending, failed = await jobs_in(server.api, queue, ("pending", {}), ("failed", {}))
    await page.goto(server.url(f"/ui/jobs?queue={queue}"))
    assert sorted(await row_ids(page)) == sorted([pending["id"], failed["id"]])

    box = page.get_by_role("checkbox", name="failed", exact=True)
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await box.evaluate("box => box === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the status checkbox 'failed'")
    # Where the focus is shows (the console's outline for :focus-visible).
    outline = await box.evaluate(
        "box => box.matches(':focus-visible') && getComputedStyle(box).outlineStyle"
    )
    assert outline == "solid"
    await page.keyboard.press("Space")
    await expect(box).to_be_checked()
    # Enter on the checkbox submits the form, with the queue it holds from the URL.
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert await row_ids(page) == [failed["id"]]
    assert parse_qs(urlsplit(page.url).query)["status"] == ["failed"]


async def test_a_phone_screen_shows_the_pages_without_sideways_scrolling(
    server: Server, browser: Browser, queue_name: Callable[[str], str]
) -> None:
    queue = queue_name("q")
    jobs = await jobs_in(
        server.api,
        queue,
        ("running", {"file_name": "a-rather-long-file-name-of-a-scanned-contract-2026.pdf"}),
        ("failed", {"metadata": {"customer": "acme"}}),
        ("pending", {}),
    )
    await report(server.api, jobs[0]["id"], "heartbeat", progress=55)
    phone: BrowserContext = await browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    try:
        page = await phone.new_page()
        for path in (f"/ui/jobs?queue={queue}", f"/ui/jobs/{jobs[0]['id']}", "/ui"):
            await page.goto(server.url(path))
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path}: the page is {width}px wide on a 390px screen"
        await page.goto(server.url(f"/ui/jobs?queue={queue}"))
        assert len(await row_ids(page)) == 3
        # The table scrolls inside its wrapper instead.
        wrapper = page.locator("div.table")
        assert await wrapper.evaluate("box => box.scrollWidth > box.clientWidth")
        assert (await get_job(server.api, jobs[0]["id"]))["progress"] == 55
    finally:
        await phone.close()
