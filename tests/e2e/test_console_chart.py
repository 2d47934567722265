"""The overview's chart at `/ui`: the jobs completed and failed in each minute of the
last hour, as inline SVG bars with a text legend and a table of the figures."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from chute.adapters.system import ManualClock
from chute.application import OrchestrationEngine

from tests.e2e.helpers import CLOCK_START, create_job

pytestmark = pytest.mark.usefixtures("clock")


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def move(clock: ManualClock, minutes: int, seconds: float = 0) -> None:
    """The clock to `minutes` and `seconds` after CLOCK_START."""
    target = CLOCK_START + timedelta(minutes=minutes, seconds=seconds)
    clock.advance((target - clock.now()).total_seconds())


async def finish(
    client: httpx.AsyncClient, engine: OrchestrationEngine, outcome: str, n: int = 1
) -> None:
    """`n` jobs made over HTTP, claimed and then completed or failed now."""
    for _ in range(n):
        job = await create_job(client)
        [claimed] = await engine.claim_jobs("w1")
        assert str(claimed.id) == job["id"]
        if outcome == "completed":
            await engine.complete_job(claimed.id, "w1")
        else:
            await engine.fail_job(claimed.id, "w1", "broken", retryable=False)


def figures(html: str) -> dict[str, tuple[int, int]]:
    """The rows of the chart's table: minute -> (completed, failed)."""
    table = html.split('id="chart-figures"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<time[^>]*>(\d\d:\d\d)</time></th><td>(\d+)</td><td>(\d+)</td>", table)
    return {minute: (int(done), int(failed)) for minute, done, failed in rows}


def bars(html: str) -> list[tuple[str, str, str]]:
    """The (x, height, fill) of each bar of the SVG."""
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    return re.findall(
        r'<rect x="([\d.]+)" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="(#[0-9a-f]+)"/>',
        svg,
    )


async def test_the_chart_counts_each_minute_of_the_last_hour(
    client: httpx.AsyncClient, engine: OrchestrationEngine, clock: ManualClock
) -> None:
    move(clock, 0, 10)
    await finish(client, engine, "completed")  # 12:00: more than an hour before the view
    move(clock, 20, 5)
    await finish(client, engine, "completed", 3)
    await finish(client, engine, "failed")
    move(clock, 45, 59)
    await finish(client, engine, "failed", 2)
    move(clock, 61, 30)
    await finish(client, engine, "completed")
    await create_job(client)  # pending: not finished

    response = await client.get("/ui")
    assert response.status_code == 200
    html = response.text
    assert figures(html) == {"12:20": (3, 1), "12:45": (0, 2), "13:01": (1, 0)}
    assert re.search(r'id="chart-completed">4<', html) and re.search(r'id="chart-failed">3<', html)
    assert "4 completed and 3 failed from 12:02 to 13:01 UTC" in html
    # The busiest minute (12:20, four jobs) fills the plot: 3/4 completed under 1/4 failed.
    drawn = bars(html)
    legend = drawn[-2:]
    assert [fill for _, _, fill in legend] == ["#137333", "#b42318"]  # completed, failed
    assert [(h, fill) for _, h, fill in drawn[:-2]] == [
        ("97.5", "#137333"),
        ("32.5", "#b42318"),
        ("65.0", "#b42318"),
        ("32.5", "#137333"),
    ]
    xs = [float(x) for x, _, _ in drawn[:-2]]
    assert xs[0] == xs[1] < xs[2] < xs[3]  # stacked, then in time order
    assert "style=" not in html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert "completed" in html and "failed" in html  # the legend's words


async def test_an_hour_without_finished_jobs_says_so(client: httpx.AsyncClient) -> None:
    html = (await client.get("/ui")).text
    assert figures(html) == {}
    assert "No job finished in the last hour." in html
    assert len(bars(html)) == 2  # the legend only


async def test_the_chart_refreshes_itself_from_its_fragment(
    client: httpx.AsyncClient, engine: OrchestrationEngine, clock: ManualClock
) -> None:
    page = (await client.get("/ui")).text
    assert 'hx-get="/ui/chart" hx-trigger="every 60s" hx-swap="outerHTML"' in page
    move(clock, 3, 30)
    await finish(client, engine, "failed")
    fragment = await client.get("/ui/chart")
    assert fragment.status_code == 200
    assert fragment.headers["content-security-policy"].startswith("default-src 'none'")
    assert fragment.text.lstrip().startswith('<figure class="chart" id="throughput"')
    assert figures(fragment.text) == {"12:03": (0, 1)}
