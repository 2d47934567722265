"""What else ran on the machine during a benchmark: CPU used by processes not of this run.

A thread reads /proc every second: the CPU time of every process, and which of them
belong to the run (this process and its descendants, and the run's PostgreSQL server,
found by a mark in its command line, with its processes). At the end: the CPU the
others used, in cores, and the busiest of them. The load average counts the
benchmark's own processes too; this does not.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _cmdline(pid: str, limit: int | None = 90) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:limit] or "?"


def cpu_seconds(pids: list[int], command_part: str | None = None) -> float:
    """CPU seconds of the processes `pids`, plus those whose command line has `command_part`
    (e.g. the PostgreSQL backends of one database)."""
    total = sum(found[1] for pid in pids if (found := _stat(str(pid))))
    if command_part:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if command_part in _cmdline(pid, None) and (found := _stat(pid)):
                total += found[1]
    return total


class Neighbours:
    """Samples /proc while it runs; `report()` tells the CPU of everyone else."""

    def __init__(self, marks: Callable[[], list[str]], interval: float = 1.0) -> None:
        self._marks, self._interval, self._done = marks, interval, threading.Event()
        self._last: dict[str, float] = {}
        self._foreign: dict[str, float] = {}  # CPU seconds by command line
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Neighbours:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        stats = {pid: s for pid in os.listdir("/proc") if pid.isdigit() and (s := _stat(pid))}
        marks = self._marks()
        roots = [os.getpid()]
        roots += [
            int(pid) for pid in stats if marks and any(m in _cmdline(pid, None) for m in marks)
        ]
        ours = _descendants(roots, stats)
        for pid, (_, cpu) in stats.items():
            used = cpu - self._last.get(pid, cpu)
            self._last[pid] = cpu
            if used > 0 and int(pid) not in ours:
                command = _cmdline(pid)
                self._foreign[command] = self._foreign.get(command, 0.0) + used

    def report(self) -> dict[str, Any]:
        seconds = max(time.monotonic() - self._started, 1e-9)
        total = sum(self._foreign.values())
        ranked = sorted(self._foreign.items(), key=lambda item: -item[1])[:5]
        top = [{"command": c, "cores": round(cpu / seconds, 2)}
               for c, cpu in ranked if cpu / seconds >= 0.02]  # fmt: skip
        return {"cores": round(total / seconds, 2), "busiest": top}


def _descendants(roots: list[int], stats: dict[str, tuple[int, float]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(int(pid))
    found, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
