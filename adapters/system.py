"""The real clock and id generator, a settable clock for tests and simulations, and the
change signal of databases that cannot signal."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from chute.application.ports import ChangeSignal, Clock, IdGenerator


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that stands still until moved: for tests and simulations."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


_forks = 0  # times this process's line was forked: a child must not reuse the random


def _forked() -> None:  # bytes its parent drew (it would make the parent's next ids)
    global _forks
    _forks += 1


os.register_at_fork(after_in_child=_forked)


class UuidV7Generator(IdGenerator):
    """UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits.

    Within one millisecond a 12-bit counter in `rand_a` keeps ids of this process
    strictly increasing, so that ids sort by creation time. The random bits come from
    the system's CSPRNG, drawn 4 KiB at a time: a draw per id (a system call) was a
    few percent of the CPU of creating a job.
    """

    RANDOM_BYTES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._counter = 0
        self._random = b""
        self._used = 0
        self._drawn_in = _forks

    def new_id(self) -> UUID:
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms > self._last_ms:
                self._last_ms, self._counter = ms, self._take(2) & 0x3FF
            else:  # same millisecond, or the clock stepped back: keep counting
                self._counter += 1
                if self._counter > 0xFFF:
                    self._last_ms, self._counter = self._last_ms + 1, 0
                ms = self._last_ms
            counter = self._counter
            rand_b = self._take(8) & ((1 << 62) - 1)
        value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
        return UUID(int=value)

    def _take(self, count: int) -> int:
        """`count` random bytes as a number; under the lock."""
        if self._used + count > len(self._random) or self._drawn_in != _forks:
            self._random, self._used, self._drawn_in = os.urandom(self.RANDOM_BYTES), 0, _forks
        start, self._used = self._used, self._used + count
        return int.from_bytes(self._random[start : self._used])


class PollingSignal(ChangeSignal):
    """A change signal that knows nothing: readers look every `interval` seconds. For
    databases that cannot tell (SQLite, which another process writes too; memory)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval

    async def wait(self, at_most: float) -> None:
        await asyncio.sleep(min(at_most, self.interval))

    async def close(self) -> None:
        pass
