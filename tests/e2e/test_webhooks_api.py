"""Webhooks over HTTP: register, list, read and delete them, read their deliveries; each
refusal a 422 that names the field; and deliveries posted to a real receiver that
verifies their signatures with the `standardwebhooks` package."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import pytest
from chute.adapters.webhooks import HttpWebhookSender
from chute.application import OrchestrationEngine
from chute.domain.webhooks import WEBHOOK_EVENTS
from chute.entrypoints.bootstrap import Container, engine_of
from chute.entrypoints.http.maintenance import job_json
from chute.entrypoints.http.schemas.webhooks import WebhookEvent
from dependency_injector import providers

from tests.e2e.helpers import URL_JOB, assert_problem, error_locs, log_lines
from tests.webhooks import Receiver

WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def with_sender(container: Container, sender: HttpWebhookSender) -> OrchestrationEngine:
    """The app's engine, built (on first use) with `sender`."""
    container.webhook_sender.override(providers.Object(sender))
    return await engine_of(container)


async def allow_private(container: Container) -> OrchestrationEngine:
    """The app's engine, sending to the receiver on 127.0.0.1 as
    CHUTE_FETCH_ALLOW_PRIVATE=true does."""
    return await with_sender(container, HttpWebhookSender(allow_private=True))


async def test_create_list_get_delete_and_the_secret_shown_once(
    client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    created = await client.post(
        WEBHOOKS,
        json={
            "url": "https://example.org/hooks?token=abc",
            "filter": {"queue": ["reports"], "metadata": {"batch": 7}},
            "description": "reports done",
        },
    )
    assert created.status_code == 201, created.text
    hook = created.json()
    assert set(hook) == {
        "id",
        "url",
        "events",
        "filter",
        "description",
        "secret",
        "created_at",
        "paused",
    }
    assert hook["paused"] is False
    assert hook["events"] == ["job.completed", "job.failed", "job.cancelled"]
    assert hook["filter"] == {"queue": ["reports"], "metadata": {"batch": "7"}}
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) == 6 + 44
    assert hook["created_at"].endswith("Z")

    shown = (await client.get(f"{WEBHOOKS}/{hook['id']}")).json()
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    listed = (await client.get(WEBHOOKS)).json()
    assert listed == {"items": [shown]}
    assert "secret" not in (await client.get(WEBHOOKS)).text
    logged = json_logs.getvalue()
    assert hook["secret"] not in logged and "token=abc" not in logged
    assert any(line.get("event") == "webhook.created" for line in log_lines(json_logs))

    assert (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries")).json() == {"items": []}
    deleted = await client.delete(f"{WEBHOOKS}/{hook['id']}")
    assert deleted.status_code == 204
    assert_problem(await client.get(f"{WEBHOOKS}/{hook['id']}"), 404, "webhook-not-found")
    assert (await client.get(WEBHOOKS)).json() == {"items": []}


async def test_the_events_asked_for_are_kept_in_one_order(client: httpx.AsyncClient) -> None:
    created = await client.post(
        WEBHOOKS, json={"url": "http://example.org/", "events": ["job.failed", "job.created"]}
    )
    assert created.json()["events"] == ["job.created", "job.failed"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "ftp://example.org/hook"}, ["body", "url"]),
        ({"url": "example.org/hook"}, ["body", "url"]),
        ({"url": "http://10.1.2.3/hook"}, ["body", "url"]),
        ({"url": "http://127.0.0.1:8080/hook"}, ["body", "url"]),
        ({"url": "http://[::1]/hook"}, ["body", "url"]),
        ({"url": "http://169.254.169.254/latest/meta-data"}, ["body", "url"]),
        ({"url": "https://user:pw@example.org/"}, ["body", "url"]),
        ({"url": "https://example.org/", "events": ["job.exploded"]}, ["body", "events", 0]),
        ({"url": "https://example.org/", "events": []}, ["body", "events"]),
        ({"url": "https://example.org/", "filter": {"status": ["nope"]}}, None),
        ({"url": "https://example.org/", "filter": {"colour": ["red"]}}, None),
        ({"url": "https://example.org/", "filter": {"created_after": "2026-01-01"}}, None),
        ({"url": "https://example.org/", "filter": {"created_before": 0}}, None),
        ({"events": ["job.failed"]}, ["body", "url"]),
        ({"url": "https://example.org/", "secret": "mine"}, ["body", "secret"]),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[Any] | None
) -> None:
    response = await client.post(WEBHOOKS, json=body)
    locs = error_locs(response)
    if loc is None:
        assert all(found[:2] == ["body", "filter"] for found in locs), locs
    else:
        assert loc in locs, locs
    assert (await client.get(WEBHOOKS)).json() == {"items": []}


async def test_a_private_address_is_allowed_when_the_server_allows_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    await allow_private(container)
    created = await client.post(WEBHOOKS, json={"url": "http://127.0.0.1:9/hook"})
    assert created.status_code == 201, created.text


async def test_an_unknown_webhook_is_a_404_problem(client: httpx.AsyncClient) -> None:
    missing = f"{WEBHOOKS}/{uuid.uuid4()}"
    assert_problem(await client.get(missing), 404, "webhook-not-found")
    assert_problem(await client.delete(missing), 404, "webhook-not-found")
    assert_problem(await client.get(f"{missing}/deliveries"), 404, "webhook-not-found")
    for paused in (True, False):
        answer = await client.patch(missing, json={"paused": paused})
        assert_problem(answer, 404, "webhook-not-found")
    assert error_locs(await client.patch(f"{WEBHOOKS}/not-a-uuid", json={"paused": True})) == [
        ["path", "webhook_id"]
    ]
    assert error_locs(await client.get(f"{WEBHOOKS}/not-a-uuid")) == [["path", "webhook_id"]]


async def test_patch_pauses_and_resumes_a_webhook_answering_it_as_get_does(
    client: httpx.AsyncClient, json_logs: io.StringIO
) -> None:
    hook = (await client.post(WEBHOOKS, json={"url": "https://example.org/rest"})).json()
    other = (await client.post(WEBHOOKS, json={"url": "https://example.org/busy"})).json()
    log_lines(json_logs)

    paused = await client.patch(f"{WEBHOOKS}/{hook['id']}", json={"paused": True})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True
    assert paused.json() == (await client.get(f"{WEBHOOKS}/{hook['id']}")).json()
    assert "secret" not in paused.json()
    listed = (await client.get(WEBHOOKS)).json()["items"]
    assert [(w["id"], w["paused"]) for w in listed] == [(hook["id"], True), (other["id"], False)]
    logged = [(line.get("event"), line.get("webhook_id")) for line in log_lines(json_logs)]
    assert ("webhook.paused", hook["id"]) in logged

    resumed = await client.patch(f"{WEBHOOKS}/{hook['id']}", json={"paused": False})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json() == {**paused.json(), "paused": False}
    assert (await client.get(f"{WEBHOOKS}/{hook['id']}")).json()["paused"] is False
    logged = [(line.get("event"), line.get("webhook_id")) for line in log_lines(json_logs)]
    assert ("webhook.resumed", hook["id"]) in logged


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "paused"]),
        ({"paused": "yes"}, ["body", "paused"]),
        ({"paused": 1}, ["body", "paused"]),
        ({"paused": None}, ["body", "paused"]),
        ({"paused": True, "url": "https://example.org/other"}, ["body", "url"]),
        ([True], ["body"]),
    ],
)
async def test_a_bad_webhook_change_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, body: Any, loc: list[str]
) -> None:
    hook = (await client.post(WEBHOOKS, json={"url": "https://example.org/hook"})).json()
    response = await client.patch(f"{WEBHOOKS}/{hook['id']}", json=body)
    assert loc in error_locs(response)
    shown = (await client.get(f"{WEBHOOKS}/{hook['id']}")).json()
    assert shown["paused"] is False and shown["url"] == "https://example.org/hook"


async def test_a_webhook_change_that_is_not_json_or_too_large_is_refused(
    client: httpx.AsyncClient,
) -> None:
    hook = (await client.post(WEBHOOKS, json={"url": "https://example.org/hook"})).json()
    at = f"{WEBHOOKS}/{hook['id']}"
    broken = await client.patch(at, content=b"{", headers={"content-type": "application/json"})
    assert_problem(broken, 422, "validation-error")
    plain = await client.patch(
        at, content=b'{"paused": true}', headers={"content-type": "text/plain"}
    )
    assert_problem(plain, 415, "unsupported-media-type")
    huge = await client.patch(at, json={"paused": True, "pad": "x" * 4096})
    assert_problem(huge, 413, "payload-too-large")
    assert (await client.get(at)).json()["paused"] is False


def test_the_schema_lists_every_event_type_of_the_domain() -> None:
    assert tuple(WebhookEvent) == WEBHOOK_EVENTS


async def test_deliveries_reach_a_receiver_signed_with_the_job_as_the_api_shows_it(
    client: httpx.AsyncClient, container: Container
) -> None:
    engine = await allow_private(container)
    with Receiver().running() as receiver:
        hook = (
            await client.post(
                WEBHOOKS,
                json={"url": receiver.url, "events": ["job.created", "job.cancelled"]},
            )
        ).json()
        receiver.secret = hook["secret"]
        job = (await client.post("/api/v1/jobs", json=URL_JOB)).json()
        assert (await client.delete(f"/api/v1/jobs/{job['id']}")).status_code == 200
        assert await engine.deliver_webhooks(job_json) == 2

        assert receiver.rejected == 0
        by_type = {r.payload["type"]: r for r in receiver.received}
        assert set(by_type) == {"job.created", "job.cancelled"}
        now = (await client.get(f"/api/v1/jobs/{job['id']}")).json()
        assert by_type["job.cancelled"].payload["data"] == now
        assert by_type["job.cancelled"].payload["timestamp"].endswith("Z")
        deliveries = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries")).json()["items"]
        assert [d["event_type"] for d in deliveries] == ["job.cancelled", "job.created"]
        assert {d["id"] for d in deliveries} == {r.message_id for r in receiver.received}
        for d in deliveries:
            assert d["attempts"] == 1 and d["last_status_code"] == 204
            assert d["delivered_at"] and d["next_attempt_at"] is None and d["last_error"] is None

        # A wrong secret: the receiver refuses the signature, and the delivery is retried.
        receiver.secret = "whsec_" + "A" * 43 + "="
        await client.post("/api/v1/jobs", json=URL_JOB)
        assert await engine.deliver_webhooks(job_json) == 1
        assert receiver.rejected == 1
        latest = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries")).json()["items"][0]
        assert latest["last_status_code"] == 400 and latest["next_attempt_at"] is not None


async def test_redirects_are_not_followed(client: httpx.AsyncClient, container: Container) -> None:
    engine = await allow_private(container)
    with Receiver().running() as receiver:
        receiver.status = 302
        hook = (
            await client.post(WEBHOOKS, json={"url": receiver.url, "events": ["job.created"]})
        ).json()
        await client.post("/api/v1/jobs", json=URL_JOB)
        await engine.deliver_webhooks(job_json)
        (d,) = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries")).json()["items"]
        assert d["last_status_code"] == 302 and "redirects are not followed" in d["last_error"]
        assert receiver.requests == 1


async def test_a_name_that_resolves_to_a_private_address_is_refused_at_send_time(
    client: httpx.AsyncClient, container: Container
) -> None:
    async def to_private(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.7"]  # one public, one not: refused

    engine = await with_sender(container, HttpWebhookSender(resolver=to_private))
    hook = (
        await client.post(
            WEBHOOKS, json={"url": "https://hooks.example.org/", "events": ["job.created"]}
        )
    ).json()
    await client.post("/api/v1/jobs", json=URL_JOB)
    await engine.deliver_webhooks(job_json)
    (d,) = (await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries")).json()["items"]
    assert d["last_error"].startswith("refused: hooks.example.org resolves to 10.0.0.7")
    assert "CHUTE_FETCH_ALLOW_PRIVATE" in d["last_error"]
    assert d["last_status_code"] is None and d["next_attempt_at"] is not None
