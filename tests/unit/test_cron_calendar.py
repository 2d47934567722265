"""The calendar of schedules (cronsim) and the domain's rules on cron and time zones."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from chute.adapters.cron import CronCalendar
from chute.domain import InvalidValue
from chute.domain import validation as rules

calendar = CronCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cron", "zone", "after", "expected"),
    [
        ("*/5 * * * *", "UTC", utc(2026, 6, 1, 10, 0, 30), utc(2026, 6, 1, 10, 5)),
        ("*/5 * * * *", "UTC", utc(2026, 6, 1, 10, 5), utc(2026, 6, 1, 10, 10)),  # strictly after
        ("30 7 * * 1-5", "Europe/Berlin", utc(2026, 12, 5, 12), utc(2026, 12, 7, 6, 30)),  # Mon
        ("0 0 1 * *", "America/New_York", utc(2026, 1, 1), utc(2026, 1, 1, 5)),
        # Berlin's spring change: 02:30 does not exist; Debian's cron runs it at 03:00 CEST.
        ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 29, 1)),
        # Berlin's autumn change: 02:30 comes twice; the first (CEST) counts, once.
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 25, 0, 30)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        ("0 0 29 2 *", "UTC", utc(2026, 3, 1), utc(2028, 2, 29)),
        ("0 0 L * *", "UTC", utc(2026, 2, 1), utc(2026, 2, 28)),
        ("0 9 * * MON#1", "UTC", utc(2026, 12, 8), utc(2027, 1, 4, 9)),
    ],
)
def test_next_after(cron: str, zone: str, after: datetime, expected: datetime) -> None:
    found = calendar.next_after(cron, zone, after)
    assert found == expected and found.tzinfo is UTC


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 6, 1, 10, 5), utc(2026, 6, 1, 10, 5)),  # at a tick: that tick
        (utc(2026, 6, 1, 10, 9, 59, 999999), utc(2026, 6, 1, 10, 5)),
        (utc(2026, 6, 1, 0, 1), utc(2026, 6, 1, 0, 0)),
    ],
)
def test_latest_at_or_before(at: datetime, expected: datetime) -> None:
    assert calendar.latest("*/5 * * * *", "UTC", at) == expected


def test_an_hourly_expression_runs_in_both_repeated_hours_of_autumn() -> None:
    times, at = [], utc(2026, 10, 24, 21, 59)  # a minute before midnight in Berlin, CEST
    while (at := calendar.next_after("0 * * * *", "Europe/Berlin", at)) < utc(2026, 10, 25, 23):
        times.append(at)
    assert len(times) == 25


@pytest.mark.parametrize(
    "cron",
    [
        "* * * *",
        "* * * * * *",
        "61 * * * *",
        "* 24 * * *",
        "0 0 30 2 *",
        "a b c d e",
        "*/0 * * * *",
    ],
)
def test_the_calendar_refuses(cron: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        calendar.check(cron)
    assert refused.value.field == "cron"


@pytest.mark.parametrize(
    "cron", ["@daily", "* * * *", "x" * 256, "* * * * *\x00", "\ud800 * * * *"]
)
def test_the_domain_refuses_the_shape(cron: str) -> None:
    with pytest.raises(InvalidValue):
        rules.check_cron_shape(cron)


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
)
def test_time_zones(zone: str) -> None:
    assert rules.check_time_zone(zone) == zone


@pytest.mark.parametrize(
    "zone",
    ["", "utc ", "Mars/Olympus", "../etc/passwd", "/etc/localtime", "Europe", "Europe/", "\x00"],
)
def test_not_time_zones(zone: str) -> None:
    with pytest.raises(InvalidValue):
        rules.check_time_zone(zone)
