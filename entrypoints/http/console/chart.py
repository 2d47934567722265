"""The overview's chart: the jobs completed and failed in each minute of the last hour,
as the geometry of an inline SVG of stacked bars (no script, no style attribute: the
pages' Content-Security-Policy allows neither)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from chute.application import MinuteCounts

WIDTH = 640  # the SVG's user units; CSS scales it to the page
HEIGHT = 170
LEFT = 40  # room for the scale's labels
TOP = 10
PLOT_HEIGHT = 130  # the tallest bar
BAR_GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute's bar: completed jobs at the bottom, failed ones stacked on top."""

    minute: datetime
    completed: int
    failed: int
    x: float
    width: float
    completed_y: float
    completed_height: float
    failed_y: float
    failed_height: float


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    top: int  # the count the plot's full height stands for
    completed: int  # in the whole window
    failed: int
    first: datetime | None
    last: datetime | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_top: int = TOP
    baseline: int = TOP + PLOT_HEIGHT

    @property
    def busy(self) -> list[Bar]:
        """The minutes with a finished job: the rows of the chart's text alternative."""
        return [bar for bar in self.bars if bar.completed or bar.failed]


def chart(minutes: Sequence[MinuteCounts]) -> Chart:
    """The bars of `minutes` (oldest first), scaled to the busiest minute."""
    top = max((m.completed + m.failed for m in minutes), default=0) or 1
    slot = (WIDTH - LEFT) / max(len(minutes), 1)
    scale = PLOT_HEIGHT / top
    baseline = TOP + PLOT_HEIGHT
    bars = []
    for index, counts in enumerate(minutes):
        completed_height = counts.completed * scale
        failed_height = counts.failed * scale
        bars.append(
            Bar(
                minute=counts.minute,
                completed=counts.completed,
                failed=counts.failed,
                x=round(LEFT + index * slot + BAR_GAP / 2, 2),
                width=round(max(slot - BAR_GAP, 1), 2),
                completed_y=round(baseline - completed_height, 2),
                completed_height=round(completed_height, 2),
                failed_y=round(baseline - completed_height - failed_height, 2),
                failed_height=round(failed_height, 2),
            )
        )
    return Chart(
        bars=bars,
        top=top,
        completed=sum(m.completed for m in minutes),
        failed=sum(m.failed for m in minutes),
        first=minutes[0].minute if minutes else None,
        last=minutes[-1].minute if minutes else None,
    )
