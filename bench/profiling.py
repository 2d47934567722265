"""Profiles of a server under load: py-spy samples its process while a benchmark runs.

`python -m bench --profile` records the server of the create, batch and remote
benchmarks (py-spy, from the `bench` extra; it needs ptrace, so root or CAP_SYS_PTRACE) and writes
`results/NAME.speedscope.json` (open it at speedscope.app) and `results/NAME.top.txt`,
the functions that hold the most samples, inclusive and self:

    python -m bench.profiling results/create-sqlite.raw      # the summary of a raw profile
    python -m bench.profiling results/create-sqlite.raw --under "create_job ("
    python -m bench.profiling results/create-sqlite.raw --packages   # self time by package
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.core import RESULTS

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    return found


@contextmanager
def profiled(pid: int, name: str, seconds: float, enabled: bool) -> Iterator[None]:
    """Sample `pid` for `seconds` while the block runs (nothing unless `enabled`)."""
    spy = py_spy() if enabled else None
    if spy is None:
        if enabled:
            print("  ! py-spy is not installed: no profile (pip install -e '.[bench]')")
        yield
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"{name}.raw"
    argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
            "--rate", "200", "--nonblocking", "--format", "raw", "-o", str(raw)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield
    finally:
        _, errors = process.communicate(timeout=seconds + 60)
        if process.returncode != 0 or not raw.exists():
            print(f"  ! py-spy failed: {errors.decode(errors='replace')[-500:]}")
        else:
            (RESULTS / f"{name}.top.txt").write_text(summary(raw))


def summary(raw: Path, top: int = 40) -> str:
    """The functions with the most samples, inclusive and self, from py-spy's raw output."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        samples = int(count)
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    out = [f"{total} samples\n", "inclusive %  function"]
    out += [f"{100 * n / total:10.1f}  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "     self %  function"]
    out += [f"{100 * n / total:10.1f}  {f}" for f, n in own.most_common(top)]
    return "\n".join(out) + "\n"


def children(raw: Path, parent: str) -> str:
    """Where the samples under the first frame matching `parent` go, one level down."""
    below: Counter[str] = Counter()
    total = inside = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")] if stack else []
        total += int(count) if stack else 0
        at = next((i for i, frame in enumerate(frames) if parent in frame), None)
        if at is None:
            continue
        inside += int(count)
        below[frames[at + 1] if at + 1 < len(frames) else "(self)"] += int(count)
    out = [f"{inside} of {total} samples under {parent!r}", "  % of all  function"]
    out += [f"{100 * n / total:10.1f}  {f}" for f, n in below.most_common()]
    return "\n".join(out) + "\n"


def by_package(raw: Path) -> str:
    """Self samples by the package (or stdlib module) of the frame that held them."""
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        leaf = stack.split(";")[-1]
        where = leaf[leaf.rfind("(") + 1 : leaf.rfind(":")]
        own[where.split("/")[0] if "/" in where else where] += int(count)
        total += int(count)
    out = [f"{total} samples", "     self %  package or module"]
    out += [f"{100 * n / total:10.1f}  {p}" for p, n in own.most_common()]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling")
    parser.add_argument("raw", type=Path, help="py-spy's --format raw output")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--under", help="break down the samples under this function instead")
    parser.add_argument("--packages", action="store_true", help="self samples by package")
    args = parser.parse_args()
    if args.packages:
        print(by_package(args.raw))
    else:
        print(children(args.raw, args.under) if args.under else summary(args.raw, args.top))


if __name__ == "__main__":
    main()
