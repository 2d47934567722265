"""The JSON values of the HTTP API: how times are written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from chute.entrypoints.http.values import rfc3339

INDIA = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 29, 19, 11, 35, 123456, tzinfo=UTC), "2026-11-29T19:11:35.123456Z"),
        (datetime(2026, 11, 29, 19, 11, 35, tzinfo=UTC), "2026-11-29T19:11:35.000000Z"),
        (datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC), "2026-01-01T00:00:00.000001Z"),
        (datetime(999, 3, 4, 5, 6, 7, 80, tzinfo=UTC), "0999-03-04T05:06:07.000080Z"),
        (datetime(2026, 3, 1, 5, 0, tzinfo=INDIA), "2026-02-28T23:30:00.000000Z"),
        (
            datetime(2026, 3, 1, 5, 0, 0, 5, tzinfo=timezone(timedelta(0))),
            "2026-03-01T05:00:00.000005Z",
        ),
        (datetime(2026, 3, 1, 5, 0), "2026-03-01T05:00:00.000000Z"),  # naive: taken as UTC
    ],
)
def test_times_are_written_in_utc_with_six_fraction_digits(moment: datetime, text: str) -> None:
    assert rfc3339(moment) == text
