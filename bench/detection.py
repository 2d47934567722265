"""`detection`: the per-file cost and the accuracy of each mode (fast, accurate, auto).

The corpus (bench/detection_corpus.py: `detection_variants` files of each of 13
formats) is written to a temporary folder. Each mode reads every file, makes the
sample chute makes (the first 64 KiB and the last 8 KiB after them), and calls the
detector adapter in process, as `chute serve` does; after an untimed pass (the model
loads), the best of `detection_passes` passes counts. Baseline: reading the same files
and hashing them (sha256), in the same run. Accuracy: the detected type against the
format each file was built as.

Accuracy again, untimed, on files no one here wrote (tests/machine_corpus.py: about
200 files this machine's Debian and Python packages installed, labelled by where they
come from): each mode overall and by class, and the classes this machine could not fill.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chute.adapters.detection import AutoDetector, LibmagicDetector, MagikaDetector
from chute.adapters.storage.local import HEAD_SIZE, TAIL_SIZE
from chute.application.ports import ContentDetector, ContentSample

from bench.core import Context, Figure, Target, recorded
from bench.detection_corpus import TRUTH, files
from tests import machine_corpus

MODES = ("fast", "accurate", "auto")


def run(ctx: Context) -> list[Figure]:
    with (
        tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp,
        recorded("detection", ctx) as data,
    ):
        corpus = _write(Path(tmp), ctx.sizes.detection_variants)
        data["files"] = len(corpus)
        data["modes"] = asyncio.run(_measure(corpus, ctx.sizes.detection_passes))
        data["machine"] = asyncio.run(_machine())
        figures = _figures(data["modes"], len(corpus)) + _machine_figures(data["machine"])
        data["figures"] = figures
        return figures


def _write(folder: Path, per_format: int) -> list[tuple[Path, str]]:
    written = []
    for name, kind, content in files(per_format):
        path = folder / name
        path.write_bytes(content)
        written.append((path, kind))
    return written


def sample_of(data: bytes) -> ContentSample:
    """The sample chute's file store takes while writing (see ContentDigest)."""
    return ContentSample(head=data[:HEAD_SIZE], tail=data[HEAD_SIZE:][-TAIL_SIZE:], size=len(data))


def _detectors() -> dict[str, ContentDetector]:
    fast, learned = LibmagicDetector(), MagikaDetector()
    return {"fast": fast, "accurate": learned, "auto": AutoDetector(fast, learned)}


async def _measure(corpus: list[tuple[Path, str]], passes: int) -> dict[str, Any]:
    detectors = _detectors()
    for detector in detectors.values():  # an untimed pass: the model loads, caches fill
        await _detect_pass(corpus, detector)
    results: dict[str, Any] = {"hash": {"seconds": min(_hash_pass(corpus) for _ in range(passes))}}
    for mode, detector in detectors.items():
        timings: list[float] = []
        answers: list[str] = []
        for _ in range(passes):
            seconds, answers = await _detect_pass(corpus, detector)
            timings.append(seconds)
        results[mode] = {"seconds": min(timings), **_accuracy(corpus, answers)}
    return results


def _hash_pass(corpus: list[tuple[Path, str]]) -> float:
    started = time.perf_counter()
    for path, _ in corpus:
        hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - started


async def _detect_pass(
    corpus: list[tuple[Path, str]], detector: ContentDetector
) -> tuple[float, list[str]]:
    answers = []
    started = time.perf_counter()
    for path, _ in corpus:
        answers.append((await detector.detect(sample_of(path.read_bytes()))).mime_type)
    return time.perf_counter() - started, answers


def _accuracy(corpus: list[tuple[Path, str]], answers: list[str]) -> dict[str, Any]:
    right: Counter[str] = Counter()
    wrong: dict[str, Counter[str]] = {}
    for (_, kind), answer in zip(corpus, answers, strict=True):
        if answer in TRUTH[kind]:
            right[kind] += 1
        else:
            wrong.setdefault(kind, Counter())[answer] += 1
    return {
        "correct": sum(right.values()),
        "by_format": dict(right),
        "mistakes": {kind: dict(found) for kind, found in wrong.items()},
    }


def _figures(modes: dict[str, Any], count: int) -> list[Figure]:
    hashed = count / modes["hash"]["seconds"]
    accuracy = {mode: 100 * modes[mode]["correct"] / count for mode in MODES}
    figures = []
    for mode in MODES:
        rate = count / modes[mode]["seconds"]
        figures.append(
            Figure(
                f"detection.{mode}.files_per_s",
                rate,
                "files/s",
                hashed,
                "read+sha256",
                Target("value", ">=", 2000) if mode == "fast" else None,
                note=f"{1e6 / rate:.0f} us a file over {count} files",
            )
        )
    for mode in ("fast", "accurate"):
        figures.append(Figure(f"detection.{mode}.accuracy", accuracy[mode], "% right"))
    best = max(accuracy["fast"], accuracy["accurate"])
    figures.append(
        Figure(
            "detection.auto.accuracy",
            accuracy["auto"],
            "% right",
            best,
            "better of fast, accurate",
            Target("ratio", ">=", 1.0),
        )
    )
    return figures


async def _machine() -> dict[str, Any]:
    """Each mode's answers on the machine corpus, tallied by class; printed as a table."""
    corpus = machine_corpus.collect()
    print(f"   machine corpus: {corpus.describe()}", flush=True)
    tallies: dict[str, dict[str, tuple[int, int]]] = {}
    mistakes: dict[str, dict[str, str]] = {}
    for mode, detector in _detectors().items():
        answers = [(await detector.detect(f.sample)).mime_type for f in corpus.files]
        tallies[mode] = machine_corpus.tally(corpus.files, answers)
        mistakes[mode] = {
            f.path: answer
            for f, answer in zip(corpus.files, answers, strict=True)
            if not machine_corpus.is_correct(f.label, answer)
        }
    print("   " + machine_corpus.table(tallies).replace("\n", "\n   "), flush=True)
    return {
        "files": len(corpus.files),
        "shortfalls": corpus.shortfalls(),
        "by_class": tallies,
        "mistakes": mistakes,
    }


def _machine_figures(machine: dict[str, Any]) -> list[Figure]:
    count = machine["files"]
    accuracy = {
        mode: 100 * sum(right for right, _ in machine["by_class"][mode].values()) / count
        for mode in MODES
    }
    short = f"; not full: {len(machine['shortfalls'])} classes" if machine["shortfalls"] else ""
    figures = [
        Figure(
            f"detection.machine.{mode}.accuracy",
            accuracy[mode],
            "% right",
            note=f"{count} files{short}",
        )
        for mode in ("fast", "accurate")
    ]
    figures.append(
        Figure(
            "detection.machine.auto.accuracy",
            accuracy["auto"],
            "% right",
            max(accuracy["fast"], accuracy["accurate"]),
            "better of fast, accurate",
            Target("ratio", ">=", 1.0),
            note=f"{count} files of this machine's packages{short}",
        )
    )
    return figures
