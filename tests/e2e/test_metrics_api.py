"""`GET /metrics` after real requests: the counters move by what was done, with the
labels of what was done; routes are labelled by template; `chute_jobs` is what the
database holds; the histograms take the times of the manual clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from chute.adapters.memory import MemoryFileStore
from chute.adapters.sqlalchemy import upgrade
from chute.adapters.system import ManualClock
from chute.entrypoints.bootstrap import Container, build_container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.settings import Settings
from dependency_injector import providers
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.e2e.helpers import create_job
from tests.pg import create_database, drop_database

pytestmark = pytest.mark.usefixtures("clock")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics, by name and labels."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def routes(samples: Samples) -> set[str]:
    return {
        dict(labels)["route"] for name, labels in samples if name == "chute_http_requests_total"
    }


async def test_creates_and_finishes_are_counted_by_queue_source_type_and_status(
    client: httpx.AsyncClient,
) -> None:
    before = await scrape(client)
    await create_job(client)
    await create_job(client, queue="video")
    batch = await client.post(
        "/api/v1/jobs/batch",
        json={"jobs": [{"source_type": "s3", "source_uri": "s3://bucket/key.pdf"}] * 3},
    )
    assert batch.status_code == 201, batch.text
    cancelled = await create_job(client, queue="video")
    assert (await client.delete(f"/api/v1/jobs/{cancelled['id']}")).status_code == 200
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chute_jobs_created_total", queue="default", source_type="url") == 1
    assert moved("chute_jobs_created_total", queue="video", source_type="url") == 2
    assert moved("chute_jobs_created_total", queue="default", source_type="s3") == 3
    assert moved("chute_jobs_finished_total", queue="video", status="cancelled") == 1
    assert moved("chute_jobs_finished_total", queue="default", status="cancelled") == 0
    # The requests themselves, by route template and status.
    assert (
        moved("chute_http_requests_total", method="POST", route="/api/v1/jobs", status="201") == 3
    )
    batch_route = {"method": "POST", "route": "/api/v1/jobs/batch"}
    assert moved("chute_http_requests_total", status="201", **batch_route) == 1
    assert moved("chute_http_request_duration_seconds_count", **batch_route) == 1
    # The first scrape is counted once it is answered: the second one saw it.
    assert value(after, "chute_http_requests_total", method="GET", route="/metrics", status="200")


async def test_routes_are_labelled_by_template_never_by_path(client: httpx.AsyncClient) -> None:
    job = await create_job(client)
    assert (await client.get(f"/api/v1/jobs/{job['id']}")).status_code == 200
    assert (await client.get(f"/api/v1/jobs/{uuid.uuid4()}")).status_code == 404
    for n in range(3):
        assert (await client.get(f"/no/such/path/{n}")).status_code == 404
    for method in ("BREW", "WHEN"):  # made-up methods: one label for all
        assert (await client.request(method, "/api/v1/jobs")).status_code == 405
    samples = await scrape(client)
    labels = {"method": "GET", "route": "/api/v1/jobs/{job_id}"}
    assert value(samples, "chute_http_requests_total", status="200", **labels) == 1
    assert value(samples, "chute_http_requests_total", status="404", **labels) == 1
    assert value(samples, "chute_http_requests_total", method="GET", route="(unmatched)",
                 status="404") == 3  # fmt: skip
    assert not any(job["id"] in route or "/no/such" in route for route in routes(samples))
    other = {"method": "OTHER", "route": "/api/v1/jobs", "status": "405"}
    assert value(samples, "chute_http_requests_total", **other) == 2


async def test_chute_jobs_is_what_the_database_holds(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    for _ in range(3):
        await create_job(client, queue="mail")
    await create_job(client, queue="mail", run_after="2026-12-01T00:00:00Z")
    claimed = await client.post("/api/v1/jobs/claim", json={"worker_id": "w1", "limit": 2})
    assert claimed.status_code == 200, claimed.text
    samples = await scrape(client)
    counts = {
        status: value(samples, "chute_jobs", queue="mail", status=status)
        for status in ("pending", "scheduled", "running", "cancelling")
    }
    assert counts == {"pending": 1, "scheduled": 1, "running": 2, "cancelling": 0}
    running = claimed.json()["jobs"][0]["id"]
    assert (await client.delete(f"/api/v1/jobs/{running}")).status_code == 202
    samples = await scrape(client)
    assert value(samples, "chute_jobs", queue="mail", status="cancelling") == 1
    assert value(samples, "chute_jobs", queue="mail", status="running") == 1


async def test_the_histograms_take_the_wait_and_the_run_of_a_job(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    job = await create_job(client, queue="pdf")
    clock.advance(5)
    claimed = await client.post("/api/v1/jobs/claim", json={"worker_id": "w1"})
    assert [j["id"] for j in claimed.json()["jobs"]] == [job["id"]]
    samples = await scrape(client)
    assert value(samples, "chute_job_wait_seconds_count", queue="pdf") == 1
    assert value(samples, "chute_job_wait_seconds_sum", queue="pdf") == 5
    assert value(samples, "chute_job_wait_seconds_bucket", queue="pdf", le="5.0") == 1
    assert value(samples, "chute_job_wait_seconds_bucket", queue="pdf", le="2.5") == 0
    assert value(samples, "chute_job_run_seconds_count", queue="pdf") == 0
    clock.advance(7)
    done = await client.post(
        f"/api/v1/jobs/{job['id']}/complete", json={"worker_id": "w1", "result": {}}
    )
    assert done.status_code == 200, done.text
    samples = await scrape(client)
    assert value(samples, "chute_job_run_seconds_count", queue="pdf") == 1
    assert value(samples, "chute_job_run_seconds_sum", queue="pdf") == 7
    assert value(samples, "chute_jobs_finished_total", queue="pdf", status="completed") == 1
    assert value(samples, "chute_job_wait_seconds_count", queue="pdf") == 1  # not again


async def test_metrics_ask_for_a_key_when_keys_are_set(container: Container) -> None:
    container.config.api_keys.from_value(Settings(api_keys="secret-key-1").api_keys)
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            refused = await client.get("/metrics")
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            keyed = await client.get("/metrics", headers={"Authorization": "Bearer secret-key-1"})
            assert keyed.status_code == 200
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(keyed.text)
                for s in family.samples
            }
    # The refusal is counted, under the route it was refused at.
    assert value(samples, "chute_http_requests_total", method="GET", route="/metrics",
                 status="401") == 1  # fmt: skip


@pytest.fixture
async def metrics_off_client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    container.config.metrics.from_value(False)
    app = create_app(container, maintenance=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_with_metrics_off_there_is_nothing_to_scrape(
    metrics_off_client: httpx.AsyncClient,
) -> None:
    await create_job(metrics_off_client)
    response = await metrics_off_client.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
async def postgres_client(
    postgres_server_url: str, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An app on a new, migrated PostgreSQL database of the test server."""
    url = await create_database(postgres_server_url)
    try:
        await upgrade(url)
        container = build_container(Settings(database_url=url, storage_dir=str(tmp_path)))
        container.file_store.override(providers.Object(MemoryFileStore()))
        app = create_app(container, maintenance=False)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield client
    finally:
        await drop_database(postgres_server_url, str(make_url(url).database))


@pytest.mark.parametrize("backend", ["postgresql"])  # the app is postgres_client's
async def test_chute_jobs_is_what_postgresql_holds(postgres_client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await create_job(postgres_client, queue="pg")
    claimed = await postgres_client.post("/api/v1/jobs/claim", json={"worker_id": "w1"})
    assert len(claimed.json()["jobs"]) == 1
    samples = await scrape(postgres_client)
    assert value(samples, "chute_jobs", queue="pg", status="pending") == 2
    assert value(samples, "chute_jobs", queue="pg", status="running") == 1
    assert value(samples, "chute_jobs_created_total", queue="pg", source_type="url") == 3
