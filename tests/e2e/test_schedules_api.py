"""Schedules over HTTP: `PUT/GET/DELETE /api/v1/schedules/{name}` and the list; every
refusal a 422 that names the field, and nothing stored by a refused request."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from chute.adapters.system import ManualClock
from chute.application import OrchestrationEngine

from tests.e2e.helpers import URL_JOB, assert_problem, error_locs, log_lines

pytestmark = pytest.mark.usefixtures("clock")
SCHEDULES = "/api/v1/schedules"


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def body(**fields: Any) -> dict[str, Any]:
    return {"cron": "*/5 * * * *", "job": {**URL_JOB, "queue": "reports"}} | fields


async def test_put_get_list_delete(client: httpx.AsyncClient) -> None:
    created = await client.put(f"{SCHEDULES}/reports", json=body(timezone="Europe/Berlin"))
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule == {
        "name": "reports",
        "cron": "*/5 * * * *",
        "timezone": "Europe/Berlin",
        "job": schedule["job"],
        "paused": False,
        "next_run_at": schedule["next_run_at"],
        "last_run_at": None,
    }
    assert schedule["job"]["source_uri"] == URL_JOB["source_uri"]
    assert schedule["job"]["queue"] == "reports" and schedule["job"]["priority"] == "normal"
    assert schedule["next_run_at"].endswith("Z")

    replaced = await client.put(f"{SCHEDULES}/reports", json=body(paused=True))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["paused"] is True and replaced.json()["next_run_at"] is None
    assert replaced.json()["timezone"] == "UTC"  # the default, as the new body says

    got = await client.get(f"{SCHEDULES}/reports")
    assert got.status_code == 200 and got.json() == replaced.json()
    listed = await client.get(SCHEDULES)
    assert listed.status_code == 200 and listed.json() == {"items": [replaced.json()]}

    deleted = await client.delete(f"{SCHEDULES}/reports")
    assert deleted.status_code == 204 and deleted.content == b""
    for gone in (
        await client.get(f"{SCHEDULES}/reports"),
        await client.delete(f"{SCHEDULES}/reports"),
    ):
        assert_problem(gone, 404, "schedule-not-found")
    assert (await client.get(SCHEDULES)).json() == {"items": []}


async def test_a_tick_creates_a_job_that_names_its_schedule(
    client: httpx.AsyncClient, engine: OrchestrationEngine, clock: ManualClock
) -> None:
    assert (await client.put(f"{SCHEDULES}/every-5", json=body())).status_code == 201
    clock.advance(300)
    await engine.run_due_schedules()
    jobs = (await client.get("/api/v1/jobs?queue=reports")).json()["items"]
    assert [(job["schedule"], job["queue"]) for job in jobs] == [("every-5", "reports")]
    events = (await client.get(f"/api/v1/jobs/{jobs[0]['id']}/events")).json()["items"]
    assert [(e["actor"], e["detail"]) for e in events] == [("scheduler", "every-5")]
    schedule = (await client.get(f"{SCHEDULES}/every-5")).json()
    assert schedule["last_run_at"] is not None


async def test_each_use_case_logs_one_event_with_the_request_id(
    client: httpx.AsyncClient,
    engine: OrchestrationEngine,
    clock: ManualClock,
    json_logs: io.StringIO,
) -> None:
    headers = {"X-Request-ID": "req-schedule-1"}
    await client.put(
        f"{SCHEDULES}/s", json=body(job={**URL_JOB, "metadata": {"pw": "hunter2"}}), headers=headers
    )
    await client.put(f"{SCHEDULES}/s", json=body(), headers=headers)
    clock.advance(300)
    await engine.run_due_schedules()
    await client.delete(f"{SCHEDULES}/s", headers=headers)
    lines = [line for line in log_lines(json_logs) if line["event"].startswith("schedule.")]
    assert [line["event"] for line in lines] == [
        "schedule.saved", "schedule.saved", "schedule.ran", "schedule.deleted"
    ]  # fmt: skip
    assert [line["new"] for line in lines[:2]] == [True, False]
    assert lines[2]["schedule"] == "s" and lines[2]["job_id"]
    assert all(
        line["request_id"] == "req-schedule-1" for line in lines if line["event"] != "schedule.ran"
    )
    assert "hunter2" not in json_logs.getvalue()


@pytest.mark.parametrize(
    ("path", "sent", "loc"),
    [
        ("s", body(cron="*/5 * * *"), ["body", "cron"]),
        ("s", body(cron="not a cron at all"), ["body", "cron"]),
        ("s", body(cron="0 0 31 2 *"), ["body", "cron"]),
        ("s", body(cron=5), ["body", "cron"]),
        ("s", body(cron="* * * * *\u0000"), ["body", "cron"]),
        ("s", body(timezone="Europe/Nowhere"), ["body", "timezone"]),
        ("s", body(timezone="../../etc/passwd"), ["body", "timezone"]),
        ("s", body(paused="yes"), ["body", "paused"]),
        (
            "s",
            body(job={**URL_JOB, "source_uri": "file:///etc/passwd"}),
            ["body", "job", "source_uri"],
        ),
        (
            "s",
            body(job={**URL_JOB, "run_after": "2026-12-01T00:00:00Z"}),
            ["body", "job", "run_after"],
        ),
        ("s", body(job={**URL_JOB, "queue": "UPPER"}), ["body", "job", "queue"]),
        ("s", body(surprise=1), ["body", "surprise"]),
        ("s", {"job": URL_JOB}, ["body", "cron"]),
        ("s", {"cron": "* * * * *"}, ["body", "job"]),
        ("Not-A-Name", body(), ["path", "name"]),
        ("x" * 65, body(), ["path", "name"]),
    ],
)
async def test_bad_input_is_a_422_that_names_the_field(
    client: httpx.AsyncClient, path: str, sent: dict[str, Any], loc: list[str]
) -> None:
    response = await client.put(f"{SCHEDULES}/{path}", json=sent)
    assert loc in error_locs(response), response.text
    assert (await client.get(SCHEDULES)).json() == {"items": []}


async def test_a_body_that_is_not_json_is_refused(client: httpx.AsyncClient) -> None:
    broken = await client.put(
        f"{SCHEDULES}/s", content=b"{", headers={"content-type": "application/json"}
    )
    assert_problem(broken, 422, "validation-error")
    plain = await client.put(
        f"{SCHEDULES}/s", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert_problem(plain, 415, "unsupported-media-type")
    huge = await client.put(f"{SCHEDULES}/s", json=body(cron="x" * 70_000))
    assert_problem(huge, 413, "payload-too-large")
    assert (await client.get(SCHEDULES)).json() == {"items": []}
