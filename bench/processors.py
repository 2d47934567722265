"""Processors for the `workers` benchmark (`chute worker --processor bench.processors:noop`)."""

from __future__ import annotations

from typing import Any

from chute.application.worker import JobContext
from chute.domain import Job


async def noop(job: Job, context: JobContext) -> dict[str, Any] | None:
    """Do nothing: what is left is the cost of claiming and completing the job."""
    return None
