"""The tables printed after each benchmark and at the end of the run."""

from __future__ import annotations

from collections.abc import Sequence

from bench.core import Figure

HEADERS = ("name", "figure", "baseline", "ratio", "target", "met?", "note")


def number(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _met(figure: Figure) -> str:
    return {True: "yes", False: "NO", None: ""}[figure.met]


def rows(figures: Sequence[Figure]) -> list[tuple[str, ...]]:
    return [
        (
            f.name,
            f"{number(f.value)} {f.unit}",
            f"{number(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "-",
            number(f.ratio),
            str(f.target) if f.target else "",
            _met(f),
            f.note,
        )
        for f in figures
    ]


def table(figures: Sequence[Figure]) -> str:
    body = rows(figures)
    widths = [max(len(row[i]) for row in [HEADERS, *body]) for i in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [HEADERS, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown(figures: Sequence[Figure]) -> str:
    """The same table as Markdown, for issues and notes."""
    out = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    out += ["| " + " | ".join(row) + " |" for row in rows(figures)]
    return "\n".join(out)
