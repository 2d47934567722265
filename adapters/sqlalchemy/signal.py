"""The change signal of PostgreSQL: LISTEN to the `chute_events` notifications.

Migration 0011's trigger sends one when a transaction that wrote events commits, from
whichever process wrote them, so a stream on any server wakes within milliseconds.
The listening connection is opened on first use and again after it was lost; while
the database is away, waiting falls back to sleeping (readers then look anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from chute.application.ports import ChangeSignal
from sqlalchemy.engine import make_url

log = logging.getLogger("chute.feed")

CHANNEL = "chute_events"


class PostgresChangeSignal(ChangeSignal):
    """Wakes on `NOTIFY chute_events`; `url` is the SQLAlchemy URL of the database."""

    def __init__(self, url: str) -> None:
        self._dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
        self._conn: asyncpg.Connection | None = None
        self._changed = asyncio.Event()

    async def wait(self, at_most: float) -> None:
        if not await self._listening():
            await asyncio.sleep(at_most)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), at_most)
        # Cleared before the reader reads: a notification during its read wakes the
        # next wait at once.
        self._changed.clear()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()

    async def _listening(self) -> bool:
        if self._conn is not None and not self._conn.is_closed():
            return True
        try:
            self._conn = await asyncpg.connect(self._dsn, timeout=5)
            await self._conn.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError) as e:
            log.warning("feed.listen_failed", extra={"error": type(e).__name__})
            self._conn = None
            return False
        self._changed.set()  # what was committed while not listening: read it now
        return True

    def _notified(self, *_: Any) -> None:
        self._changed.set()
