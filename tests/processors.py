"""Processors for tests that run `chute worker` processes (`--processor tests.processors:...`).

`sleepy` sleeps and does nothing else: 5 to 20 ms, or `metadata["seconds"]` when given,
or `metadata["first_attempt_seconds"]` on a job's first attempt (so that one job is
surely still running when its worker is killed, and quick when another takes it over).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from chute.application.worker import JobContext
from chute.domain import Job


async def sleepy(job: Job, context: JobContext) -> dict[str, Any] | None:
    first = job.metadata.get("first_attempt_seconds")
    if first is not None and job.attempts == 1:
        await asyncio.sleep(float(first))
    else:
        await asyncio.sleep(float(job.metadata.get("seconds", random.uniform(0.005, 0.02))))
    return None


def not_a_processor() -> str:
    """A factory that makes no processor, for the CLI's error test."""
    return "nothing to run"
