"""Helpers of the browser tests: a server and its API client, jobs made and moved through
the API as a worker would, and what the console's pages show."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from playwright.async_api import Page

from tests.faults import ChuteServer

URL_JOB: dict[str, Any] = {"source_type": "url", "source_uri": "https://example.org/report.pdf"}


@dataclass
class Server:
    base_url: str
    api: httpx.AsyncClient
    process: ChuteServer

    def url(self, path: str) -> str:
        return self.base_url + path


async def create_jobs(api: httpx.AsyncClient, *jobs: dict[str, Any]) -> list[dict[str, Any]]:
    """Create `jobs` (url jobs, with each dict's fields changed) in one batch, in order."""
    created: list[dict[str, Any]] = []
    for start in range(0, len(jobs), 1000):
        body = {"jobs": [URL_JOB | job for job in jobs[start : start + 1000]]}
        response = await api.post("/api/v1/jobs/batch", json=body)
        assert response.status_code == 201, response.text
        created += response.json()["jobs"]
    return created


async def claim(
    api: httpx.AsyncClient, queue: str, limit: int = 1, worker: str = "w1"
) -> list[dict[str, Any]]:
    """Claim up to `limit` jobs of `queue` as `worker`."""
    body = {"worker_id": worker, "queues": [queue], "limit": limit}
    response = await api.post("/api/v1/jobs/claim", json=body)
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


async def report(
    api: httpx.AsyncClient, job_id: str, action: str, worker: str = "w1", **body: Any
) -> dict[str, Any]:
    """A worker's `action` (heartbeat, complete, fail) on a job it holds; the job after."""
    response = await api.post(f"/api/v1/jobs/{job_id}/{action}", json={"worker_id": worker} | body)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


WORKED = ("running", "completed", "failed")


async def jobs_in(
    api: httpx.AsyncClient, queue: str, *specs: tuple[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One job of `queue` per (status, fields) of `specs`, brought to that status as a
    worker would (claim; complete or fail for good) or by cancelling a pending one; the
    jobs as they are then, in the order of `specs`. The queue must hold no pending job."""
    worked = [i for i, (status, _) in enumerate(specs) if status in WORKED]
    rest = [i for i, (status, _) in enumerate(specs) if status not in WORKED]
    made: dict[int, dict[str, Any]] = {}
    if worked:
        created = await create_jobs(
            api, *({"queue": queue, "max_attempts": 1} | specs[i][1] for i in worked)
        )
        claimed = await claim(api, queue, limit=len(worked))
        assert {job["id"] for job in claimed} == {job["id"] for job in created}
        for i, job in zip(worked, created, strict=True):
            status = specs[i][0]
            if status == "completed":
                await report(api, job["id"], "complete", result={"pages": 12})
            elif status == "failed":
                await report(api, job["id"], "fail", error="unreadable file", retryable=False)
            made[i] = job
    if rest:
        created = await create_jobs(api, *({"queue": queue} | specs[i][1] for i in rest))
        made |= dict(zip(rest, created, strict=True))
        cancel = [made[i]["id"] for i in rest if specs[i][0] == "cancelled"]
        if cancel:
            response = await api.post("/api/v1/jobs/cancel", json={"ids": cancel})
            assert response.json()["changed"] == len(cancel), response.text
    jobs = [await get_job(api, made[i]["id"]) for i in range(len(specs))]
    assert [job["status"] for job in jobs] == [status for status, _ in specs]
    return jobs


async def get_job(api: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def row_ids(page: Page) -> list[str]:
    """The full ids of the job rows the list shows, in order."""
    ids: list[str] = await page.locator("tbody tr[id^='job-']").evaluate_all(
        "rows => rows.map(row => row.id.slice(4))"
    )
    return ids


async def following(page: Page) -> None:
    """Wait until the page's live connection (/ui/live) is open, and a little longer (the
    server subscribes to the feed right after it answers): what changes next comes by
    the feed, not by what a connection sends first of the jobs that changed meanwhile."""
    # A function, not an expression: Playwright polls an expression with eval, which the
    # console's Content-Security-Policy forbids (it passed only when already true).
    await page.wait_for_function("() => window.__sseOpens > 0")
    await asyncio.sleep(0.3)


async def mark(page: Page) -> None:
    """Set a marker on the page's window: it stays only while no navigation happens."""
    await page.evaluate("window.__marker = 'still here'")


async def marked(page: Page) -> bool:
    return bool(await page.evaluate("window.__marker === 'still here'"))
