"""The calendar of schedules: cron expressions read by cronsim.

cronsim (the evaluator of Healthchecks.io) was chosen because it follows Debian's cron
across daylight-saving changes, which is what people who write crontabs expect: a
time that a change skips runs once, right after the change (`30 2 * * *` runs at 03:00
on the spring day); a time that a change repeats runs once (`30 2 * * *` once on the
autumn day), while a job of every hour or minute runs in both repeated hours. It takes
`zoneinfo` time zones, and iterates backwards as well (for the latest missed tick).
Expressions have five fields; names (`MON`, `JAN`), lists, ranges and steps, `L` and
`#` as cronsim reads them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from chute.application.ports import Calendar
from chute.domain import InvalidValue
from cronsim import CronSim, CronSimError

MINUTE = timedelta(minutes=1)


class CronCalendar(Calendar):
    """Five-field cron expressions in IANA time zones; times out are in UTC."""

    def check(self, cron: str) -> None:
        if len(cron.split()) != 5:
            raise InvalidValue("cron", "must have five fields")
        try:
            CronSim(cron, datetime(2000, 1, 1))
        except CronSimError as e:
            raise InvalidValue("cron", f"is not a cron expression: {e}") from None

    def next_after(self, cron: str, timezone: str, after: datetime) -> datetime | None:
        start = after.astimezone(ZoneInfo(timezone))
        return _first(CronSim(cron, start))

    def latest(self, cron: str, timezone: str, at: datetime) -> datetime | None:
        # Backwards, cronsim answers times strictly before its start; ticks are whole
        # minutes, so starting at the next whole minute answers the latest at or before.
        local = at.astimezone(ZoneInfo(timezone))
        start = local.replace(second=0, microsecond=0) + MINUTE
        return _first(CronSim(cron, start, reverse=True))


def _first(times: CronSim) -> datetime | None:
    try:
        return next(times).astimezone(UTC)
    except StopIteration:  # nothing in the next (or last) 50 years
        return None
