"""Queues: the named lines jobs wait in, and the settings an operator gives one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DEFAULT_QUEUE = "default"


@dataclass(slots=True, kw_only=True)
class QueueSettings:
    """What an operator set on a queue: paused (no job of it is claimed) and at most
    `concurrency_limit` of its jobs held (`running` or `cancelling`) at once."""

    name: str
    paused: bool = False
    concurrency_limit: int | None = None
    updated_at: datetime

    def capacity(self, held: int) -> int | None:
        """How many more jobs may be claimed with `held` held now: None for no limit."""
        if self.paused:
            return 0
        if self.concurrency_limit is None:
            return None
        return max(0, self.concurrency_limit - held)
