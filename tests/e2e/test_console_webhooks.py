"""The console's webhooks pages: `/ui/webhooks` (list, register, pause, resume, delete) and
`/ui/webhooks/{id}` (one webhook and its deliveries); the signing secret is shown once,
and a URL to a private address is refused as the API refuses it."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from chute.adapters.webhooks import HttpWebhookSender
from chute.application import OrchestrationEngine
from chute.entrypoints.bootstrap import Container, engine_of
from chute.entrypoints.http.maintenance import job_json
from dependency_injector import providers

from tests.e2e.helpers import create_job

pytestmark = pytest.mark.usefixtures("clock")

PAGE = "/ui/webhooks"
API = "/api/v1/webhooks"
FINAL = ["job.completed", "job.failed", "job.cancelled"]


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def register(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    """POST the form as a browser sends it: the final events are checked unless told."""
    data: dict[str, Any] = {"url": "https://example.org/hooks?token=abc", "events": FINAL} | fields
    return await client.post(PAGE, data=data)


async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(API)
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def secret_on(html: str) -> str | None:
    found = re.search(r"<pre class=\"mono\">(whsec_[A-Za-z0-9+/=]+)</pre>", html)
    return found.group(1) if found else None


async def test_registering_shows_the_secret_once(client: httpx.AsyncClient) -> None:
    response = await register(
        client,
        events=["job.completed", "job.failed"],
        queue="reports mail",
        status=["failed"],
        metadata="batch=7",
        description="reports done",
    )
    assert response.status_code == 201, response.text
    [hook] = await listed(client)
    assert hook["url"] == "https://example.org/hooks?token=abc"
    assert hook["events"] == ["job.completed", "job.failed"]
    assert hook["filter"] == {
        "queue": ["mail", "reports"],
        "status": ["failed"],
        "metadata": {"batch": "7"},
    }
    assert hook["description"] == "reports done"
    secret = secret_on(response.text)
    assert secret is not None and len(secret) == 6 + 44
    assert "shown this once" in response.text
    assert response.headers["cache-control"] == "no-store"

    # Never again: not on the list, not on the webhook's page.
    for page in (PAGE, f"{PAGE}/{hook['id']}"):
        shown = await client.get(page)
        assert shown.status_code == 200
        assert secret not in shown.text and secret_on(shown.text) is None
    listing = (await client.get(PAGE)).text
    assert "https://example.org/hooks?token=abc" in listing.replace("&amp;", "&")
    assert "job.completed, job.failed" in listing
    assert f'href="/ui/webhooks/{hook["id"]}"' in listing


async def test_the_default_events_are_the_final_ones(client: httpx.AsyncClient) -> None:
    form = (await client.get(PAGE)).text
    checked = re.findall(r'name="events" value="([a-z.]+)" checked', form)
    assert checked == FINAL


async def test_delete(client: httpx.AsyncClient) -> None:
    await register(client)
    [hook] = await listed(client)
    deleted = await client.post(f"{PAGE}/{hook['id']}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == PAGE
    assert await listed(client) == []
    assert "No webhook yet." in (await client.get(PAGE)).text
    again = await client.post(f"{PAGE}/{hook['id']}/delete")
    assert again.status_code == 404
    assert (await client.get(f"{PAGE}/{hook['id']}")).status_code == 404
    assert (await client.get(f"{PAGE}/not-an-id")).status_code == 404


def webhook_row(html: str, webhook_id: str) -> str:
    found = re.search(rf'<tr id="webhook-{webhook_id}">(.*?)</tr>', html, re.S)
    assert found, html
    return found.group(1)


async def test_pause_and_resume_from_the_list(client: httpx.AsyncClient) -> None:
    await register(client)
    [hook] = await listed(client)
    cells = webhook_row((await client.get(PAGE)).text, hook["id"])
    assert '<td class="state">active</td>' in cells
    assert f'action="/ui/webhooks/{hook["id"]}/pause"' in cells and ">Pause</button>" in cells

    paused = await client.post(f"{PAGE}/{hook['id']}/pause")
    assert paused.status_code == 303 and paused.headers["location"] == PAGE
    assert [w["paused"] for w in await listed(client)] == [True]
    cells = webhook_row((await client.get(PAGE)).text, hook["id"])
    assert '<td class="state">paused</td>' in cells
    assert f'action="/ui/webhooks/{hook["id"]}/resume"' in cells and ">Resume</button>" in cells

    resumed = await client.post(f"{PAGE}/{hook['id']}/resume")
    assert resumed.status_code == 303 and resumed.headers["location"] == PAGE
    assert [w["paused"] for w in await listed(client)] == [False]
    assert '<td class="state">active</td>' in webhook_row((await client.get(PAGE)).text, hook["id"])


async def test_pause_and_resume_from_the_webhooks_page(client: httpx.AsyncClient) -> None:
    await register(client)
    [hook] = await listed(client)
    at = f"{PAGE}/{hook['id']}"
    shown = (await client.get(at)).text
    assert '<dd id="state">active</dd>' in shown
    assert f'action="{at}/pause?back=webhook"' in shown and "Pause webhook" in shown

    paused = await client.post(f"{at}/pause?back=webhook")
    assert paused.status_code == 303 and paused.headers["location"] == at
    assert [w["paused"] for w in await listed(client)] == [True]
    shown = (await client.get(at)).text
    assert '<dd id="state">paused:' in shown
    assert f'action="{at}/resume?back=webhook"' in shown and "Resume webhook" in shown

    resumed = await client.post(f"{at}/resume?back=webhook")
    assert resumed.status_code == 303 and resumed.headers["location"] == at
    assert [w["paused"] for w in await listed(client)] == [False]


async def test_pausing_an_unknown_webhook_is_a_404(client: httpx.AsyncClient) -> None:
    for action in ("pause", "resume"):
        missing = await client.post(f"{PAGE}/{uuid.uuid4()}/{action}")
        assert missing.status_code == 404 and "No such webhook" in missing.text
        assert (await client.post(f"{PAGE}/not-an-id/{action}")).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"url": "http://127.0.0.1:8080/hook"}, "url", "not public"),
        ({"url": "http://10.1.2.3/hook"}, "url", "not public"),
        ({"url": "http://[::1]/hook"}, "url", "not public"),
        ({"url": "ftp://example.org/hook"}, "url", "http or https"),
        ({"url": "https://user:pw@example.org/"}, "url", "user or password"),
        ({"events": []}, "events", ""),
        ({"events": ["job.exploded"]}, "events", ""),
        ({"queue": "Not_A_Queue!"}, "filter.queue", ""),
        ({"metadata": "novalue"}, "filter.metadata", "key=value"),
        ({"created_after": "yesterday"}, "filter.created_after", ""),
    ],
)
async def test_bad_input_is_refused_and_named(
    client: httpx.AsyncClient, fields: dict[str, Any], field: str, says: str
) -> None:
    data: dict[str, Any] = {"events": ["job.completed"]} | fields
    response = await register(client, **data)
    assert response.status_code == 422
    errors = response.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert f"<strong>{field}</strong>" in errors
    assert says in errors
    assert 'aria-invalid="true"' in response.text
    assert secret_on(response.text) is None
    assert await listed(client) == []


async def test_the_private_address_rule_is_the_apis(client: httpx.AsyncClient) -> None:
    url = "http://192.168.1.5/hook"
    by_api = await client.post(API, json={"url": url})
    assert by_api.status_code == 422
    [api_error] = by_api.json()["errors"]
    by_page = await register(client, url=url)
    assert by_page.status_code == 422
    assert api_error["msg"] in by_page.text
    assert await listed(client) == []


async def test_markup_in_a_url_shows_as_text(client: httpx.AsyncClient) -> None:
    url = "https://example.org/<script>alert(1)</script>"
    response = await register(client, url=url, description="<b>bold</b>")
    assert response.status_code == 201
    for page in (PAGE, f"{PAGE}/{(await listed(client))[0]['id']}", response):
        html = page.text if isinstance(page, httpx.Response) else (await client.get(page)).text
        assert "<script>alert" not in html and "<b>bold" not in html
        assert "https://example.org/&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;b&gt;bold&lt;/b&gt;" in html


async def public(host: str, port: int) -> list[str]:
    return ["93.184.215.14"]  # example.org, without asking DNS


async def test_the_deliveries_page_shows_each_attempts_outcome(
    client: httpx.AsyncClient, container: Container
) -> None:
    answers: dict[str, int] = {}

    def receiver(request: httpx.Request) -> httpx.Response:
        job_id = json.loads(request.content)["data"]["id"]
        return httpx.Response(answers[job_id])

    sender = HttpWebhookSender(resolver=public, transport=httpx.MockTransport(receiver))
    container.webhook_sender.override(providers.Object(sender))
    engine: OrchestrationEngine = await engine_of(container)

    created = await register(client, url="https://example.org/hook", events=["job.created"])
    assert created.status_code == 201
    [hook] = await listed(client)
    refused, taken = await create_job(client), await create_job(client)
    answers |= {refused["id"]: 503, taken["id"]: 204}
    assert await engine.deliver_webhooks(job_json) == 2

    page = await client.get(f"{PAGE}/{hook['id']}")
    assert page.status_code == 200
    rows = {}
    for cells in re.findall(r'<tr id="delivery-[0-9a-f-]+">(.*?)</tr>', page.text, re.S):
        [job_id] = re.findall(r'href="/ui/jobs/([0-9a-f-]+)"', cells)
        rows[job_id] = dict(re.findall(r'<td class="([a-z-]+)">(.*?)</td>', cells, re.S))
    assert set(rows) == {refused["id"], taken["id"]}
    failed, delivered = rows[refused["id"]], rows[taken["id"]]
    assert "job.created" in page.text
    assert failed["attempts"] == delivered["attempts"] == "1"
    assert (failed["status-code"], failed["last-error"]) == ("503", "answered 503")
    assert (delivered["status-code"], delivered["last-error"]) == ("204", "—")
    assert failed["delivered"] == failed["given-up"] == "—"
    assert failed["next-attempt"].startswith("<time")  # to be retried
    assert (
        delivered["delivered"]
        == '<time datetime="2026-11-29T12:00:00+00:00">2026-11-29 12:00:00</time>'
    )
    assert delivered["given-up"] == delivered["next-attempt"] == "—"  # settled
