"""The console's pages and actions against generated query strings and forms: whatever
comes, the answer is a page with a 2xx, 3xx or 4xx status, never a 500, and an action
that is refused changes nothing. (The console is not in the OpenAPI description, so the
schemathesis fuzzing of test_fuzz.py does not reach it.)"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from chute.entrypoints.bootstrap import Container
from chute.entrypoints.http.app import create_app
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import contract

ZERO_ID = "00000000-0000-0000-0000-000000000000"
NAMES = [
    "status", "queue", "priority", "source_type", "mode", "mime_type", "created_after",
    "created_before", "metadata", "metadata.k", "metadata.", "sort", "limit", "cursor",
    "count", "page", "id", "action", "query", "confirmed", "next", "key", "paused",
    "concurrency_limit", "view", "job_id", "since", "x",
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(["", "pending", "failed", "cancel-all", "retry", "yes", "-1", "1", "99999",
                     "2026-01-01T00:00", "a=b", "=", "/ui", "//evil", ZERO_ID]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
)  # fmt: skip
PAIRS = st.lists(st.tuples(st.sampled_from(NAMES), TEXT), max_size=8)
PATHS = ["/ui", "/ui/jobs", "/ui/jump", "/ui/queues", "/ui/schedules", "/ui/webhooks",
         "/ui/login", "/ui/chart"]  # fmt: skip
ACTIONS = ["/ui/jobs/bulk", "/ui/queues/default", "/ui/queues/%3Cx%3E", "/ui/login",
           "/ui/schedules", "/ui/webhooks",
           "/ui/webhooks/00000000-0000-0000-0000-000000000000/pause",
           "/ui/jobs/00000000-0000-0000-0000-000000000000/cancel"]  # fmt: skip
FUZZ = settings(
    max_examples=contract.EXAMPLES * 4,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def console(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container, maintenance=False)) as client:
        client.post("/api/v1/jobs", json={"source_type": "url", "source_uri": "https://e.org/a"})
        yield client


def job_statuses(client: TestClient) -> list[str]:
    return [job["status"] for job in client.get("/api/v1/jobs").json()["items"]]


@FUZZ
@given(path=st.sampled_from(PATHS), pairs=PAIRS)
def test_pages_answer_any_query_without_a_500(
    console: TestClient, path: str, pairs: list[tuple[str, str]]
) -> None:
    response = console.get(path, params=pairs, follow_redirects=False)
    assert response.status_code < 500, (path, pairs, response.text[:500])


@FUZZ
@given(path=st.sampled_from(ACTIONS), pairs=PAIRS)
def test_actions_answer_any_form_without_a_500(
    console: TestClient, path: str, pairs: list[tuple[str, str]]
) -> None:
    before = job_statuses(console)
    headers = {"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
    response = console.post(path, content=urlencode(pairs), headers=headers, follow_redirects=False)
    assert response.status_code < 500, (path, pairs, response.text[:500])
    if response.status_code >= 400:
        assert job_statuses(console) == before, (path, pairs)
