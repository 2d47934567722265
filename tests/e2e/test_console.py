"""The console's pages through HTTP, in process: what each page shows, that users' values
are escaped, that filters are the list API's, that actions act as the API's would and
refuse what comes from another site, and the sign-in with its session cookie.
(A real browser drives the same pages in tests/browser/.)"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chute.adapters.memory import MemoryDatabase
from chute.entrypoints.bootstrap import build_container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.http.console.session import COOKIE, MAX_AGE, Sessions
from chute.entrypoints.http.keys import KeyRing
from chute.entrypoints.settings import Settings
from dependency_injector import providers

from tests.e2e.helpers import claim_one, create_job, report
from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

XSS = '<script>window.__pwned=1</script><img src=x onerror="alert(1)">'
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rows(html: str) -> list[str]:
    """The job ids of the list's rows, in order."""
    return re.findall(r'<tr id="job-([0-9a-f-]{36})"', html)


async def post(client: httpx.AsyncClient, path: str, data: Any) -> httpx.Response:
    return await client.post(path, data=data, headers=SAME_SITE)


# -- pages -----------------------------------------------------------------------------------


async def test_the_overview_shows_every_queue_with_its_counts(client: httpx.AsyncClient) -> None:
    await create_job(client, queue="mail")
    await create_job(client, queue="mail")
    await create_job(client, queue="video")

    response = await client.get("/ui")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    mail = re.search(r'<tr id="queue-mail">(.*?)</tr>', response.text, re.S)
    assert mail and re.search(r"<td>2</td>", mail.group(1))
    assert 'id="queue-video"' in response.text


async def test_a_queue_is_paused_limited_and_resumed_from_the_overview(
    client: httpx.AsyncClient,
) -> None:
    await create_job(client, queue="mail")

    assert (await post(client, "/ui/queues/mail", {"paused": "true"})).status_code == 303
    assert (await client.get("/api/v1/queues/mail")).json()["paused"] is True
    response = await post(client, "/ui/queues/mail", {"concurrency_limit": "3"})
    assert response.status_code == 303
    assert (await client.get("/api/v1/queues/mail")).json()["concurrency_limit"] == 3
    await post(client, "/ui/queues/mail", {"paused": "false"})
    await post(client, "/ui/queues/mail", {"concurrency_limit": ""})
    queue = (await client.get("/api/v1/queues/mail")).json()
    assert (queue["paused"], queue["concurrency_limit"]) == (False, None)

    bad = await post(client, "/ui/queues/mail", {"concurrency_limit": "0"})
    assert bad.status_code == 422 and "concurrency_limit" in bad.text
    assert (await post(client, "/ui/queues/mail", {"concurrency_limit": "x"})).status_code == 422
    assert (await client.get("/api/v1/queues/mail")).json()["concurrency_limit"] is None


async def test_the_list_filters_as_the_api_does_and_pages_by_cursor(
    client: httpx.AsyncClient,
) -> None:
    made = [await create_job(client, queue="mail", metadata={"n": str(n)}) for n in range(7)]
    await create_job(client, queue="video", metadata={"n": "1"})

    page = await client.get("/ui/jobs", params={"queue": "mail", "limit": 3, "status": ""})
    first = rows(page.text)
    assert len(first) == 3
    assert "7 jobs match" in page.text
    following = re.search(r'href="(/ui/jobs\?[^"]*cursor=[^"]*)" rel="next"', page.text)
    assert following, page.text
    second = rows((await client.get(following.group(1).replace("&amp;", "&"))).text)
    assert len(second) == 3 and not set(first) & set(second)

    api = await client.get("/api/v1/jobs", params={"queue": "mail", "limit": 3})
    assert first == [job["id"] for job in api.json()["items"]]

    by_words = await client.get("/ui/jobs", params={"metadata": "n=1"})
    by_name = await client.get("/ui/jobs", params={"metadata.n": "1"})
    assert sorted(rows(by_words.text)) == sorted(rows(by_name.text))
    assert len(rows(by_name.text)) == 2
    assert made[1]["id"] in rows(by_name.text)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"metadata": "novalue"}, "metadata"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"limit": "5000"}, "limit"),
        ({"whatever": "1"}, "whatever"),
    ],
)
async def test_bad_filters_are_named_on_a_422_page(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/ui/jobs", params=params)
    assert response.status_code == 422
    assert f"<strong>{field}</strong>" in response.text


async def test_times_without_an_offset_are_utc(client: httpx.AsyncClient) -> None:
    await create_job(client)
    later = await client.get("/ui/jobs", params={"created_after": "2090-01-01T00:00"})
    earlier = await client.get("/ui/jobs", params={"created_after": "2000-01-01T00:00"})
    assert (later.status_code, len(rows(later.text))) == (200, 0)
    assert len(rows(earlier.text)) == 1


async def test_users_values_are_shown_as_text(client: httpx.AsyncClient) -> None:
    job = await create_job(
        client,
        source_uri="https://example.org/<script>alert(1)</script>",
        metadata={"note": XSS, XSS: "x"},
    )
    await create_job(client, queue="q" * 10)

    for path in ("/ui/jobs", f"/ui/jobs/{job['id']}", "/ui"):
        html = (await client.get(path)).text
        assert "<script>window" not in html and "<img src=x" not in html, path
        assert "<script>alert" not in html, path
    assert "&lt;script&gt;" in (await client.get(f"/ui/jobs/{job['id']}")).text


async def test_a_job_page_shows_its_fields_and_timeline(client: httpx.AsyncClient) -> None:
    job = await create_job(client, metadata={"customer": "acme"})
    claimed = await claim_one(client)
    await report(client, claimed["id"], "fail", error="disk on fire")

    html = (await client.get(f"/ui/jobs/{job['id']}")).text

    assert job["id"] in html and "acme" in html and "disk on fire" in html
    timeline = re.search(r'<table id="timeline">(.*?)</table>', html, re.S)
    assert timeline and timeline.group(1).count("<tr>") == 1 + 3  # head + 3 events
    assert "w1" in timeline.group(1)


async def test_unknown_and_malformed_job_ids_are_404_pages(client: httpx.AsyncClient) -> None:
    for path in ("/ui/jobs/0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41", "/ui/jobs/not-an-id"):
        response = await client.get(path)
        assert response.status_code == 404 and "No such job" in response.text
    jump = await client.get("/ui/jump", params={"id": "<b>x</b>"})
    assert jump.status_code == 404 and "<b>x" not in jump.text


async def test_the_jump_box_opens_a_job(client: httpx.AsyncClient) -> None:
    job = await create_job(client)
    response = await client.get("/ui/jump", params={"id": f"  {job['id']} "})
    assert (response.status_code, response.headers["location"]) == (303, f"/ui/jobs/{job['id']}")


async def test_cancel_and_retry_from_a_job_page_act_as_the_api(client: httpx.AsyncClient) -> None:
    job = await create_job(client)

    assert (await post(client, f"/ui/jobs/{job['id']}/cancel", {})).status_code == 303
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "cancelled"
    again = await post(client, f"/ui/jobs/{job['id']}/cancel", {})  # as the API: no change
    assert again.status_code == 303
    assert (await post(client, f"/ui/jobs/{job['id']}/retry", {})).status_code == 303
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "pending"
    refused = await post(client, f"/ui/jobs/{job['id']}/retry", {})
    assert refused.status_code == 409 and "pending" in refused.text
    events = (await client.get(f"/api/v1/jobs/{job['id']}/events")).json()["items"]
    assert [e["to_status"] for e in events] == ["pending", "cancelled", "pending"]


async def test_bulk_by_selection_and_by_every_match_with_a_confirmation(
    client: httpx.AsyncClient,
) -> None:
    jobs = [await create_job(client, queue="mail") for _ in range(5)]
    other = await create_job(client, queue="video")

    picked = {"action": "cancel", "id": [jobs[0]["id"], jobs[1]["id"]], "query": "queue=mail"}
    done = await post(client, "/ui/jobs/bulk", picked)
    assert done.status_code == 200 and 'id="changed">2<' in done.text

    ask = await post(client, "/ui/jobs/bulk", {"action": "cancel-all", "query": "queue=mail"})
    assert ask.status_code == 200 and "all 5 jobs" in ask.text  # 2 already cancelled match
    assert (await client.get(f"/api/v1/jobs/{jobs[2]['id']}")).json()["status"] == "pending"
    confirmed = {"action": "cancel-all", "query": "queue=mail", "confirmed": "yes"}
    done = await post(client, "/ui/jobs/bulk", confirmed)
    assert 'id="changed">3<' in done.text
    statuses = [(await client.get(f"/api/v1/jobs/{j['id']}")).json()["status"] for j in jobs]
    assert statuses == ["cancelled"] * 5
    assert (await client.get(f"/api/v1/jobs/{other['id']}")).json()["status"] == "pending"

    retry = {"action": "retry-all", "query": "queue=mail&status=cancelled", "confirmed": "yes"}
    assert 'id="changed">5<' in (await post(client, "/ui/jobs/bulk", retry)).text


@pytest.mark.parametrize(
    "form",
    [
        {"action": "delete"},
        {"action": "cancel", "id": "not-an-id"},
        {"action": "cancel"},
        {"action": "cancel-all", "query": "status=bogus", "confirmed": "yes"},
    ],
)
async def test_bad_bulk_forms_change_nothing(
    client: httpx.AsyncClient, form: dict[str, str]
) -> None:
    job = await create_job(client)
    assert (await post(client, "/ui/jobs/bulk", form)).status_code == 422
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "pending"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
async def test_actions_from_another_site_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    job = await create_job(client)
    response = await client.post(f"/ui/jobs/{job['id']}/cancel", headers=headers)
    assert response.status_code == 403
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "pending"
    ok = await client.post(f"/ui/jobs/{job['id']}/cancel", headers={"Origin": "http://test"})
    assert ok.status_code == 303


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ChuteServer]:
    """A real `chute serve` (httpx's in-process transport cannot stream a response)."""
    chute = ChuteServer(
        chute_env(sqlite_url(tmp_path / "live.db"), tmp_path / "s"), tmp_path / "log"
    )
    await chute.start()
    try:
        yield chute
    finally:
        chute.stop()


async def next_event(lines: AsyncIterator[str]) -> tuple[str, str]:
    """The next event of an SSE stream: its name and its data lines joined."""
    event = await anext(lines)
    while not event.startswith("event:"):
        event = await anext(lines)
    data = []
    async for line in lines:
        if not line:
            break
        data.append(line.removeprefix("data: "))
    return event.removeprefix("event: "), "\n".join(data)


@pytest.mark.slow
async def test_the_live_stream_sends_a_row_for_htmx_when_a_job_changes(
    server: ChuteServer,
) -> None:
    """At connection it first sends the job as it is (what changed while the page loaded
    is not lost), then each change as it comes."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        job = await create_job(client)
        params = {"view": "row", "job_id": job["id"]}
        async with client.stream("GET", "/ui/live", params=params) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert (await anext(lines)) == "retry: 2000"  # opened
            name, first = await next_event(lines)
            assert name == f"job-{job['id']}" and "status-pending" in first
            await claim_one(client)
            name, row = await next_event(lines)
    assert name == f"job-{job['id']}"
    assert row.startswith(f'<tr id="job-{job["id"]}" sse-swap="job-{job["id"]}"')
    assert "status-running" in row


@pytest.mark.parametrize(
    "params", [{"view": "row"}, {"view": "x", "job_id": "0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41"},
               {"view": "row", "job_id": "nope"}],
)  # fmt: skip
async def test_the_live_stream_refuses_bad_parameters(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert (await client.get("/ui/live", params=params)).status_code == 422


async def test_the_static_files_are_served_from_the_package(client: httpx.AsyncClient) -> None:
    for name in ("htmx.min.js", "sse.js", "console.css", "console.js"):
        response = await client.get(f"/ui/static/{name}")
        assert response.status_code == 200 and len(response.content) > 100, name
    assert (await client.get("/ui/static/../pages.py")).status_code == 404


async def test_the_console_is_not_in_the_api_description(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/ui")]


# -- sign-in ---------------------------------------------------------------------------------

KEY = "chute_console-test-key-000000000000000"


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A console whose API asks for KEY."""
    settings = Settings(
        database_url=sqlite_url(tmp_path / "c.db"),
        storage_dir=str(tmp_path / "s"),
        api_keys=f"{KEY},other-key-1111111111",
    )
    container = build_container(settings)
    container.database.override(providers.Object(MemoryDatabase()))
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_without_a_session_pages_go_to_the_sign_in_and_show_nothing(
    keyed: httpx.AsyncClient,
) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    created = await keyed.post(
        "/api/v1/jobs", json={"source_type": "url", "source_uri": "https://e.org/x"}, headers=auth
    )
    job_id = created.json()["id"]
    for path in ("/ui", "/ui/jobs?status=pending", f"/ui/jobs/{job_id}", "/ui/live?job_id=x"):
        response = await keyed.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=")
        assert job_id not in response.text
    assert (await keyed.post(f"/ui/jobs/{job_id}/cancel", headers=SAME_SITE)).status_code == 401
    assert (await keyed.get("/ui/login")).status_code == 200
    assert (await keyed.get("/ui/static/htmx.min.js")).status_code == 200


async def test_signing_in_with_a_key_keeps_a_strict_session_cookie(
    keyed: httpx.AsyncClient,
) -> None:
    wrong = await post(keyed, "/ui/login", {"key": "nope", "next": "/ui/jobs"})
    assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")

    response = await post(keyed, "/ui/login", {"key": KEY, "next": "/ui/jobs?status=failed"})

    assert (response.status_code, response.headers["location"]) == (303, "/ui/jobs?status=failed")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert KEY.lower() not in cookie
    assert (await keyed.get("/ui/jobs")).status_code == 200
    assert (await keyed.get("/api/v1/jobs")).status_code == 401  # the cookie is the console's

    await post(keyed, "/ui/logout", {})
    assert (await keyed.get("/ui/jobs")).status_code == 303


async def test_sign_in_goes_only_to_console_pages(keyed: httpx.AsyncClient) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/api/v1/jobs", "/ui\\..\\x"):
        response = await post(keyed, "/ui/login", {"key": KEY, "next": target})
        assert response.headers["location"] == "/ui", target


def test_a_session_lasts_its_time_only_while_its_key_is_configured() -> None:
    sessions = Sessions(KeyRing.of(f"{KEY},second-key-22222222"))
    cookie = sessions.issue(KEY, now=1000)
    assert cookie is not None and sessions.valid(cookie, now=1000 + MAX_AGE - 1)
    assert not sessions.valid(cookie, now=1000 + MAX_AGE)
    assert not sessions.valid(cookie, now=999)
    assert sessions.issue("not-a-key") is None

    body, _, signature = cookie.rpartition(".")
    label, _, issued = body.partition(".")
    assert not sessions.valid(f"{label}.{int(issued) + 3600}.{signature}", now=1000)
    assert not sessions.valid(cookie[:-2] + "xx", now=1000)
    assert not sessions.valid("", now=1000) and not sessions.valid("a.b.c", now=1000)

    assert not Sessions(KeyRing.of("second-key-22222222")).valid(cookie, now=1000)  # key gone
    assert not Sessions(KeyRing.of(KEY), secret="elsewhere").valid(cookie, now=1000)
    same = Sessions(KeyRing.of(f"second-key-22222222,{KEY}"))
    assert same.valid(cookie, now=1000)  # other processes with the same keys accept it
    assert time.time() > 0


async def test_forms_too_large_or_not_forms_are_refused_before_any_work(
    client: httpx.AsyncClient,
) -> None:
    job = await create_job(client)
    big = {"action": "cancel", "id": job["id"], "query": "x" * 300_000}
    assert (await post(client, "/ui/jobs/bulk", big)).status_code == 413

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        yield f"action=cancel&id={job['id']}&query=".encode()
        for _ in range(100):
            yield b"x" * 10_000

    chunked = await client.post(
        "/ui/jobs/bulk",
        content=endless(),
        headers=SAME_SITE | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert chunked.status_code == 413
    as_json = await client.post("/ui/jobs/bulk", json={"action": "cancel"}, headers=SAME_SITE)
    assert as_json.status_code == 415
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).json()["status"] == "pending"
