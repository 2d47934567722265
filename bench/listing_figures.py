"""The figures of the `list` benchmark, from its raw results."""

from __future__ import annotations

from typing import Any

from bench.core import Figure, Target

RAW_PARTS_TARGET = Target("ratio", "<=", 1.5)  # issue 16: within 1.5x the limit of its parts

NO_TARGET = ("offset_deep",)  # OFFSET costs in proportion to its depth, by nature
SCALED = (
    "cursor_deep",
    "filtered",
    "filtered_nocount",
    "metadata",
    "metadata_nocount",
    "metadata_two_nocount",
)


def rows_name(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def figures_of(results: dict[str, Any], sizes: tuple[int, ...], target: Target) -> list[Figure]:
    figures = []
    for key, result in results.items():
        figures += _cases(key, result, target)
        figures += _raw_parts(key, result)
        figures.append(_count_cost(key, result))
        figures.append(_walk(key, result))
    if len(set(sizes)) > 1:
        figures += _scaling(results, rows_name(min(sizes)), rows_name(max(sizes)), target)
    return figures


def _cases(key: str, result: dict[str, Any], target: Target) -> list[Figure]:
    figures = []
    for case, found in result["cases"].items():
        chute, noop = found["chute"], found["noop"]
        figures.append(
            Figure(
                f"list.{key}.{case}",
                chute["p50_ms"],
                "ms p50",
                noop["p50_ms"],
                "no-op p50",
                None if case in NO_TARGET else target,
                note=f"p99 {chute['p99_ms']:.2f} ms (no-op {noop['p99_ms']:.2f}); "
                f"{chute['requests']} requests; {found['bytes']} bytes",
            )
        )
    return figures


def _raw_parts(key: str, result: dict[str, Any]) -> list[Figure]:
    """The first page against its raw parts (`bench/list_raw_app.py`), where measured."""
    found = result["cases"].get("first", {})
    if "raw" not in found:
        return []
    chute, raw = found["chute"], found["raw"]
    return [
        Figure(
            f"list.{key}.first_page.raw_parts",
            chute["p50_ms"],
            "ms p50",
            raw["p50_ms"],
            "raw parts p50",
            RAW_PARTS_TARGET,
            note=f"p99 {chute['p99_ms']:.2f} ms (raw parts {raw['p99_ms']:.2f}); "
            f"{raw['requests']} raw requests; {found['raw_bytes']} bytes "
            f"(chute {found['bytes']}); canned p50 {found['noop']['p50_ms']:.2f} ms",
        )
    ]


def _count_cost(key: str, result: dict[str, Any]) -> Figure:
    counted = result["cases"]["first"]["chute"]["p50_ms"]
    uncounted = result["cases"]["first_nocount"]["chute"]["p50_ms"]
    return Figure(
        f"list.{key}.count_cost",
        counted,
        "ms p50",
        uncounted,
        "count=false",
        note=f"total costs {counted - uncounted:+.2f} ms on the first page",
    )


def _walk(key: str, result: dict[str, Any]) -> Figure:
    walk = result["walk"]
    return Figure(
        f"list.{key}.cursor_walk",
        walk["chute"]["p50_ms"],
        "ms p50",
        walk["noop"]["p50_ms"],
        "no-op, same client",
        note=f"{walk['chute']['pages']} pages by next_cursor from half-way, "
        f"{walk['chute']['seconds']:.2f} s",
    )


def _scaling(results: dict[str, Any], few: str, many: str, target: Target) -> list[Figure]:
    figures = []
    for database in ("sqlite", "postgres"):
        small, large = results.get(f"{database}.{few}"), results.get(f"{database}.{many}")
        if not (small and large):
            continue
        for case in SCALED:
            figures.append(
                Figure(
                    f"list.{database}.scale.{case}",
                    large["cases"][case]["chute"]["p50_ms"],
                    f"ms p50 at {many}",
                    small["cases"][case]["chute"]["p50_ms"],
                    f"p50 at {few}",
                    target,
                )
            )
    return figures
