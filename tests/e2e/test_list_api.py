"""Listing jobs over HTTP: filters, sorts, pages and cursors, on memory and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest
from chute.adapters.memory import MemoryDatabase
from chute.adapters.system import ManualClock
from chute.application import DEFAULT_COUNT_CAP, OrchestrationEngine
from chute.domain import JobStatus
from chute.entrypoints.bootstrap import Container, build_container, engine_of, settled
from chute.entrypoints.settings import Settings
from dependency_injector import providers

from tests.e2e.helpers import create_job, error_locs

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock_start() -> datetime:
    return START


async def seed(
    client: httpx.AsyncClient, clock: ManualClock, *specs: dict[str, Any]
) -> list[dict[str, Any]]:
    """One job per spec, created one second apart (at START, START+1s, ...)."""
    jobs = []
    for spec in specs:
        jobs.append(await create_job(client, **spec))
        clock.advance(1)
    return jobs


async def listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/jobs", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ids(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["id"] for job in jobs]


# -- order and pages -------------------------------------------------------------------------


async def test_list_shows_newest_first_by_default(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    jobs = await seed(client, clock, {}, {}, {})

    page = await listing(client)

    assert ids(page["items"]) == ids(jobs)[::-1]
    assert {k: v for k, v in page.items() if k != "items"} == {
        "total": 3, "total_exact": True, "page": 1, "limit": 50, "pages": 1, "next_cursor": None,
    }  # fmt: skip


async def test_list_sorts_by_creation_and_by_priority(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    priorities = ["low", "urgent", "normal", "urgent", "high"]
    jobs = await seed(client, clock, *({"priority": p} for p in priorities))
    t = ids(jobs)

    assert ids((await listing(client, sort="created_at"))["items"]) == t
    assert ids((await listing(client, sort="-created_at"))["items"]) == t[::-1]
    # Ties are broken by creation time in the direction of the sort.
    assert ids((await listing(client, sort="-priority"))["items"]) == [t[3], t[1], t[4], t[2], t[0]]
    assert ids((await listing(client, sort="priority"))["items"]) == [t[0], t[2], t[4], t[1], t[3]]


async def test_list_counts_pages(client: httpx.AsyncClient, clock: ManualClock) -> None:
    jobs = await seed(client, clock, *({} for _ in range(5)))

    first = await listing(client, limit=2)
    last = await listing(client, limit=2, page=3)
    beyond = await listing(client, limit=2, page=4)

    assert (first["total"], first["pages"], first["page"]) == (5, 3, 1)
    assert ids(last["items"]) == [jobs[0]["id"]]
    assert (last["page"], last["next_cursor"]) == (3, None)
    assert (beyond["items"], beyond["total"], beyond["pages"]) == ([], 5, 3)


async def test_list_with_nothing_to_show_has_zero_pages(client: httpx.AsyncClient) -> None:
    page = await listing(client, status="running")

    assert (page["items"], page["total"], page["pages"], page["next_cursor"]) == ([], 0, 0, None)


async def test_list_without_count_answers_null_total_and_pages(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, clock, {}, {}, {})

    page = await listing(client, count="false", limit=2)

    assert (page["total"], page["pages"], len(page["items"])) == (None, None, 2)
    assert page["total_exact"] is None
    assert page["next_cursor"] is not None


async def test_list_total_stops_at_the_count_cap(
    container: Container, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    container.config.count_cap.from_value(3)  # before the engine is first built
    await seed(client, clock, *({"priority": "high"} for _ in range(4)), {}, {}, {})

    capped = await listing(client, limit=2)
    high = await listing(client, limit=2, priority="high")
    exact = await listing(client, limit=2, priority="normal")

    assert (capped["total"], capped["total_exact"], capped["pages"]) == (3, False, 2)
    assert (high["total"], high["total_exact"], high["pages"]) == (3, False, 2)
    assert (exact["total"], exact["total_exact"], exact["pages"]) == (3, True, 2)
    # The cap bounds the count only: every job is still listed, page by page.
    assert len((await listing(client, limit=2, page=4))["items"]) == 1


async def test_count_cap_is_the_chute_count_cap_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTE_COUNT_CAP", "25")
    container = build_container(Settings())
    container.database.override(providers.Object(MemoryDatabase()))

    assert Settings.model_fields["count_cap"].default == DEFAULT_COUNT_CAP == 1_000
    try:
        # An async resource (tracing) lies under the engine: it is built awaited.
        assert (await engine_of(container)).count_cap == 25
    finally:
        await settled(container.shutdown_resources())


# -- cursors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "-priority", "priority"])
async def test_cursor_walk_visits_every_job_once(
    client: httpx.AsyncClient, clock: ManualClock, sort: str
) -> None:
    priorities = ["low", "urgent", "normal", "urgent", "high", "normal", "low"]
    await seed(client, clock, *({"priority": p} for p in priorities))
    expected = ids((await listing(client, sort=sort))["items"])

    seen, page = [], await listing(client, sort=sort, limit=3)
    seen += ids(page["items"])
    limits = iter([2, 1, 3, 3, 3])  # the limit may change from one cursor page to the next
    while page["next_cursor"]:
        page = await listing(client, sort=sort, limit=next(limits), cursor=page["next_cursor"])
        assert page["page"] is None
        seen += ids(page["items"])

    assert seen == expected


async def test_cursor_stays_correct_while_new_jobs_arrive(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    jobs = await seed(client, clock, *({} for _ in range(4)))
    first = await listing(client, limit=2)
    await seed(client, clock, {}, {})  # newer than everything: before the cursor

    second = await listing(client, limit=2, cursor=first["next_cursor"])

    assert ids(second["items"]) == [jobs[1]["id"], jobs[0]["id"]]
    assert second["next_cursor"] is None


@pytest.mark.parametrize(
    "other",
    [{"sort": "created_at"}, {"status": "pending"}, {"mime_type": "image/*"}, {"mode": "fast"}],
)
async def test_cursor_made_for_another_list_is_refused(
    client: httpx.AsyncClient, clock: ManualClock, other: dict[str, str]
) -> None:
    await seed(client, clock, {}, {}, {})
    cursor = (await listing(client, limit=1))["next_cursor"]

    response = await client.get("/api/v1/jobs", params={"cursor": cursor, **other})

    assert error_locs(response) == [["query", "cursor"]]


@pytest.mark.parametrize("cursor", ["garbage", "e30", "eyJzIjoiLWNyZWF0ZWRfYXQifQ", "!!!", ""])
async def test_cursor_that_does_not_decode_is_refused(
    client: httpx.AsyncClient, cursor: str
) -> None:
    response = await client.get("/api/v1/jobs", params={"cursor": cursor})

    assert error_locs(response) == [["query", "cursor"]]


async def test_page_is_validated_even_with_a_cursor(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    await seed(client, clock, {}, {})
    cursor = (await listing(client, limit=1))["next_cursor"]

    response = await client.get("/api/v1/jobs", params={"cursor": cursor, "page": 0})

    assert error_locs(response) == [["query", "page"]]


# -- filters ---------------------------------------------------------------------------------


async def test_list_filters_by_repeated_status(
    client: httpx.AsyncClient, clock: ManualClock, engine: OrchestrationEngine
) -> None:
    _, cancelled, failed = await seed(client, clock, {}, {}, {})
    await client.delete(f"/api/v1/jobs/{cancelled['id']}")
    for status in (JobStatus.RUNNING, JobStatus.FAILED):
        await engine.update_job_status(UUID(failed["id"]), status)

    page = await listing(client, status=["failed", "cancelled"])

    assert ids(page["items"]) == [failed["id"], cancelled["id"]]
    assert page["total"] == 2


async def test_list_filters_by_source_type_priority_and_mode(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    s3 = {"source_type": "s3", "source_uri": "s3://my-bucket/a.pdf"}
    jobs = await seed(
        client, clock, s3 | {"priority": "high"}, {"priority": "urgent", "mode": "fast"}, {}
    )

    by_source = await listing(client, source_type="s3")
    by_priority = await listing(client, priority=["high", "urgent"])
    by_mode = await listing(client, mode=["fast", "accurate"])
    combined = await listing(client, source_type="url", priority="high")

    assert ids(by_source["items"]) == [jobs[0]["id"]]
    assert ids(by_priority["items"]) == [jobs[1]["id"], jobs[0]["id"]]
    assert ids(by_mode["items"]) == [jobs[1]["id"]]
    assert combined["items"] == []


async def test_list_filters_by_exact_mime_type_or_type_wildcard(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    types = ["image/png", "image/jpeg", "application/pdf", None]
    jobs = await seed(client, clock, *({"mime_type": t} if t else {} for t in types))

    exact = await listing(client, mime_type="image/png")
    wildcard = await listing(client, mime_type="image/*")

    assert ids(exact["items"]) == [jobs[0]["id"]]
    assert ids(wildcard["items"]) == [jobs[1]["id"], jobs[0]["id"]]


async def test_list_filters_by_creation_time_after_inclusive_before_exclusive(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    jobs = await seed(client, clock, *({} for _ in range(5)))  # at START + 0s .. 4s

    page = await listing(
        client,
        created_after="2026-01-01T01:00:01+01:00",  # START + 1s, given in another offset
        created_before="2026-01-01T00:00:03.000000Z",
    )

    assert ids(page["items"]) == [jobs[2]["id"], jobs[1]["id"]]


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"status": "bogus"}, "status"),
        ({"source_type": "ftp"}, "source_type"),
        ({"priority": "asap"}, "priority"),
        ({"mode": "slow"}, "mode"),
        ({"sort": "name"}, "sort"),
        ({"created_after": "2026-01-01T00:00:00"}, "created_after"),
        ({"created_before": "2026-01-01"}, "created_before"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_after": "1700000000"}, "created_after"),
        ({"mime_type": "image"}, "mime_type"),
        ({"mime_type": "*/*"}, "mime_type"),
        ({"count": "maybe"}, "count"),
        ({"stauts": "failed"}, "stauts"),
    ],
)
async def test_list_refuses_bad_query_values(
    client: httpx.AsyncClient, params: dict[str, Any], loc: str
) -> None:
    response = await client.get("/api/v1/jobs", params=params)

    assert [loc_[:2] for loc_ in error_locs(response)] == [["query", loc]]


async def test_a_mime_type_filter_finds_a_format_by_any_of_its_names(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    [elf, gzip] = await seed(
        client,
        clock,
        {"mime_type": "application/x-pie-executable"},
        {"mime_type": "application/x-gzip"},
    )
    assert elf["mime_type"] == "application/x-executable"  # stored under chute's name
    assert gzip["mime_type"] == "application/gzip"

    by_magika_name = await listing(client, mime_type="application/x-executable-elf")
    by_old_name = await listing(client, mime_type="application/x-gzip")

    assert ids(by_magika_name["items"]) == [elf["id"]]
    assert ids(by_old_name["items"]) == [gzip["id"]]


# -- metadata filters ------------------------------------------------------------------------


async def test_metadata_filters_match_strings_numbers_booleans_and_null_by_their_text(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    jobs = await seed(
        client,
        clock,
        {"metadata": {"tenant": "acme", "batch": 7, "ok": True}},
        {"metadata": {"tenant": "acme", "batch": "7", "ok": "true", "note": None}},
        {"metadata": {"tenant": "Acme", "batch": 7.5, "ok": False, "note": "null"}},
        {"metadata": {"tenant": ["acme"], "batch": [7]}},
    )
    a, b, c, _ = ids(jobs)

    async def found(**params: str) -> list[str]:
        return ids((await listing(client, **params))["items"])

    assert await found(**{"metadata.tenant": "acme"}) == [b, a]
    assert await found(**{"metadata.batch": "7"}) == [b, a]
    assert await found(**{"metadata.batch": "7.5"}) == [c]
    assert await found(**{"metadata.ok": "true"}) == [b, a]
    assert await found(**{"metadata.ok": "false"}) == [c]
    assert await found(**{"metadata.note": "null"}) == [c, b]
    assert await found(**{"metadata.tenant": "acme", "metadata.ok": "false"}) == []


async def test_metadata_filters_combine_with_the_other_filters(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    jobs = await seed(
        client,
        clock,
        {"metadata": {"tenant": "acme"}, "priority": "high"},
        {"metadata": {"tenant": "acme"}, "priority": "low"},
        {"metadata": {"tenant": "globex"}, "priority": "high"},
    )
    page = await listing(client, priority="high", **{"metadata.tenant": "acme"})

    assert ids(page["items"]) == [jobs[0]["id"]]
    assert page["total"] == 1


async def test_cursor_pages_keep_the_metadata_filters_and_refuse_other_ones(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    specs = [{"metadata": {"tenant": "acme" if i % 2 else "globex"}} for i in range(7)]
    jobs = await seed(client, clock, *specs)
    acme = {"metadata.tenant": "acme"}

    page = await listing(client, limit=2, **acme)
    seen = ids(page["items"])
    while page["next_cursor"]:
        page = await listing(client, limit=2, cursor=page["next_cursor"], **acme)
        seen += ids(page["items"])
    assert seen == [job["id"] for job in reversed(jobs[1::2])]

    cursor = (await listing(client, limit=1, **acme))["next_cursor"]
    for other in ({}, {"metadata.tenant": "globex"}, {**acme, "metadata.x": "1"}):
        response = await client.get("/api/v1/jobs", params={"cursor": cursor, **other})
        assert error_locs(response) == [["query", "cursor"]], other


async def test_at_most_five_metadata_filters_are_taken(client: httpx.AsyncClient) -> None:
    five = {f"metadata.k{i}": "v" for i in range(5)}
    assert (await listing(client, **five))["items"] == []

    response = await client.get("/api/v1/jobs", params={**five, "metadata.k5": "v"})

    assert error_locs(response) == [["query", "metadata.k5"]]


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("metadata.tenant=a%00b", "metadata.tenant"),  # NUL in the value
        ("metadata.ten%00ant=acme", "metadata.ten\x00ant"),  # NUL in the key
        ("metadata.tenant=a&metadata.tenant=b", "metadata.tenant"),  # one value per key
        ("metadata.=acme", "metadata."),  # no key: an unknown parameter
    ],
)
async def test_metadata_filters_refuse_unstorable_repeated_or_empty_keys(
    client: httpx.AsyncClient, query: str, loc: str
) -> None:
    response = await client.get(f"/api/v1/jobs?{query}")

    assert [found[:2] for found in error_locs(response)] == [["query", loc]]
