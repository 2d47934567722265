"""The console's schedules page, `/ui/schedules`: the list, the create-or-replace form
(read by the API's own request model), pause, resume and delete; bad input re-renders
the page with a 422 that names the field, and stores nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.settings import Settings

pytestmark = pytest.mark.usefixtures("clock")  # CLOCK_START: 2026-11-29 12:00 UTC

PAGE = "/ui/schedules"
API = "/api/v1/schedules"
FORM = {
    "name": "nightly",
    "cron": "0 2 * * *",
    "timezone": "Europe/Berlin",
    "source_type": "url",
    "source_uri": "https://example.org/report.pdf",
    "queue": "reports",
    "priority": "high",
    "mode": "auto",
    "max_attempts": "5",
    "file_name": "",
    "file_size": "",
    "mime_type": "",
    "metadata": '{"batch": 7}',
}


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def save(client: httpx.AsyncClient, **changes: str) -> httpx.Response:
    return await client.post(PAGE, data=FORM | changes)


async def stored(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(API)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def row(html: str, name: str) -> str:
    """The table row of the schedule `name`."""
    found = re.search(rf'<tr id="schedule-{re.escape(name)}">(.*?)</tr>', html, re.S)
    assert found, html
    return found.group(1)


async def test_a_schedule_made_by_the_form_is_the_one_the_api_makes(
    client: httpx.AsyncClient,
) -> None:
    response = await save(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/schedules?saved=nightly"

    [made] = await stored(client)
    by_api = await client.put(
        f"{API}/same",
        json={
            "cron": "0 2 * * *",
            "timezone": "Europe/Berlin",
            "job": {
                "source_type": "url",
                "source_uri": "https://example.org/report.pdf",
                "queue": "reports",
                "priority": "high",
                "max_attempts": 5,
                "metadata": {"batch": 7},
            },
        },
    )
    assert by_api.status_code == 201
    assert made | {"name": "same"} == by_api.json()
    assert made["next_run_at"] == "2026-11-30T01:00:00.000000Z"  # 02:00 in Berlin

    page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert "Schedule nightly saved." in page.text
    cells = row(page.text, "nightly")
    for shown in ("0 2 * * *", "Europe/Berlin", "active", "2026-11-30 01:00:00", "reports"):
        assert shown in cells
    assert 'url: <span class="mono">https://example.org/report.pdf</span>' in cells
    assert "{&#34;batch&#34;: 7}" in cells
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_the_same_name_replaces_and_the_edit_link_fills_the_form(
    client: httpx.AsyncClient,
) -> None:
    assert (await save(client)).status_code == 303
    assert (await save(client, cron="*/15 * * * *", timezone="UTC")).status_code == 303
    [only] = await stored(client)
    assert (only["cron"], only["timezone"]) == ("*/15 * * * *", "UTC")
    assert only["next_run_at"] == "2026-11-29T12:15:00.000000Z"

    edit = (await client.get(f"{PAGE}?edit=nightly")).text
    assert 'name="cron" value="*/15 * * * *"' in edit
    assert 'name="max_attempts" value="5"' in edit
    assert '<option value="high" selected>' in edit
    assert "&#34;batch&#34;: 7" in edit.split('name="metadata"', 1)[1]
    missing = await client.get(f"{PAGE}?edit=nothing")
    assert missing.status_code == 404 and "No schedule is named" in missing.text


async def test_pause_resume_and_delete(client: httpx.AsyncClient) -> None:
    await save(client)

    paused = await client.post(f"{PAGE}/nightly/pause")
    assert paused.status_code == 303 and paused.headers["location"] == PAGE
    [schedule] = await stored(client)
    assert (schedule["paused"], schedule["next_run_at"]) == (True, None)
    cells = row((await client.get(PAGE)).text, "nightly")
    assert "paused" in cells and 'action="/ui/schedules/nightly/resume"' in cells

    assert (await client.post(f"{PAGE}/nightly/resume")).status_code == 303
    [schedule] = await stored(client)
    assert (schedule["paused"], schedule["next_run_at"]) == (False, "2026-11-30T01:00:00.000000Z")
    assert schedule["job"]["metadata"] == {"batch": 7}  # the rest stays as it was

    deleted = await client.post(f"{PAGE}/nightly/delete")
    assert deleted.status_code == 303
    assert await stored(client) == []
    assert "No schedule yet." in (await client.get(PAGE)).text
    again = await client.post(f"{PAGE}/nightly/delete")
    assert again.status_code == 404 and "No schedule is named" in again.text
    assert (await client.post(f"{PAGE}/nightly/pause")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 30 2 *"}, "cron"),  # February 30th never comes
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"name": "Bad Name"}, "name"),
        ({"name": ""}, "name"),
        ({"source_uri": "ftp://example.org/x"}, "job.source_uri"),
        ({"source_type": "upload"}, "job.source_type"),
        ({"queue": "Not A Queue"}, "job.queue"),
        ({"max_attempts": "99"}, "job.max_attempts"),
        ({"max_attempts": "three"}, "job.max_attempts"),
        ({"metadata": "{"}, "job.metadata"),
        ({"metadata": "[1, 2]"}, "job.metadata"),
        ({"metadata": '{"n": NaN}'}, "job.metadata"),
    ],
)
async def test_bad_input_is_named_and_nothing_is_stored(
    client: httpx.AsyncClient, changes: dict[str, str], field: str
) -> None:
    await save(client, name="kept", cron="*/5 * * * *")
    before = await stored(client)

    response = await save(client, **(changes if "name" in changes else {"name": "kept"} | changes))
    assert response.status_code == 422
    errors = response.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert f"<strong>{field}</strong>" in errors
    assert 'aria-invalid="true"' in response.text
    for name, value in changes.items():  # what was typed is still there to correct
        if name not in ("source_type", "metadata"):
            assert f'name="{name}" value="{value}"' in response.text
    assert await stored(client) == before  # the schedule "kept" is not half-replaced


async def test_every_bad_field_is_named_at_once(client: httpx.AsyncClient) -> None:
    response = await save(client, name="Bad Name", timezone="Nowhere/Else", metadata="{")
    assert response.status_code == 422
    for field in ("name", "timezone", "job.metadata"):
        assert f"<strong>{field}</strong>" in response.text
    assert await stored(client) == []


async def test_markup_in_a_schedule_shows_as_text(client: httpx.AsyncClient) -> None:
    evil = '{"note": "<script>alert(1)</script>", "<b>": "x"}'
    assert (await save(client, metadata=evil)).status_code == 303
    html = (await client.get(PAGE)).text
    assert "<script>alert" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    edit = (await client.get(f"{PAGE}?edit=nightly")).text
    assert "<script>alert" not in edit and "&lt;script&gt;alert(1)" in edit


async def test_an_action_from_another_site_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(PAGE, data=FORM, headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403
    assert await stored(client) == []
    await save(client)
    cross = {"origin": "https://evil.example"}
    assert (await client.post(f"{PAGE}/nightly/delete", headers=cross)).status_code == 403
    assert len(await stored(client)) == 1


async def test_the_console_pages_are_not_in_the_api_description(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/ui")]


KEY = "chute_console-key-for-tests-0123456789"


@pytest.fixture
async def keyed(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with CHUTE_API_KEYS set: the console asks for a sign-in."""
    container.config.api_keys.from_value(Settings(api_keys=KEY).api_keys)
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.mark.parametrize("page", [PAGE, "/ui/webhooks"])
async def test_the_pages_ask_for_a_sign_in(keyed: httpx.AsyncClient, page: str) -> None:
    shown = await keyed.get(page)
    assert shown.status_code == 303 and shown.headers["location"].startswith("/ui/login?next=")
    refused = await keyed.post(page, data=FORM | {"url": "https://example.org/hook"})
    assert refused.status_code == 401
    assert (await keyed.post("/ui/schedules/nightly/delete")).status_code == 401
    api = await keyed.get(API, headers={"authorization": f"Bearer {KEY}"})
    assert api.json()["items"] == []

    signed_in = await keyed.post("/ui/login", data={"key": KEY, "next": page})
    assert signed_in.status_code == 303
    assert (await keyed.get(page)).status_code == 200
