"""OrchestrationEngine: chute's use cases, one async method each, one transaction each.

The use cases are grouped by who calls them, one module a group; the engine is all of
them over one set of ports (see `EngineBase` for its constructor):

- `creating`: create_job, create_jobs (idempotency keys included)
- `uploading`: upload, submit_upload; store_content, redetect_content for workers
- `managing`: get_job, list_jobs, list_job_events, open_content, cancel_job, retry_job,
  update_job_status, check_ready
- `bulk`: cancel_jobs, retry_jobs (by ids, or by a list filter)
- `working`: claim_jobs, heartbeat, complete_job, complete_jobs, fail_job, release_job,
  rescue_expired_leases
- `purging`: purge_jobs, sweep_orphans (retention, for operators and schedules)
- `queuing`: list_queues, get_queue, update_queue (pause, resume, concurrency limit)
- `scheduling`: put_schedule, list_schedules, get_schedule, delete_schedule,
  run_due_schedules (each tick one job, however many processes run it)
- `webhooks`: create_webhook, list_webhooks, get_webhook, delete_webhook,
  list_webhook_deliveries, deliver_webhooks (the outbox of status changes, sent signed),
  purge_webhook_deliveries (settled deliveries older than the retention)
- `owning`: claim_storage (at start, and before a sweep: one storage per database)
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from chute.application.use_cases.bulk import Bulk
from chute.application.use_cases.creating import Creating
from chute.application.use_cases.leasing import Working
from chute.application.use_cases.managing import Managing
from chute.application.use_cases.owning import Owning
from chute.application.use_cases.purging import Purging
from chute.application.use_cases.queuing import Queuing
from chute.application.use_cases.scheduling import Scheduling
from chute.application.use_cases.uploading import Uploading
from chute.application.use_cases.webhooks import Webhooks

E = TypeVar("E", bound=type)


def _traced(name: str, method: Callable[..., Coroutine[Any, Any, Any]]) -> Any:
    span_name = f"chute.{name}"

    @functools.wraps(method)
    async def traced(self: OrchestrationEngine, *args: Any, **kwargs: Any) -> Any:
        with self.telemetry.span(span_name):
            return await method(self, *args, **kwargs)

    return traced


def spans_around_use_cases(cls: E) -> E:
    """Wrap every public async method of `cls` (its use cases) in a span of the engine's
    telemetry, named `chute.<method>`: one place, so that no use case is left out."""
    for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction):
        if not name.startswith("_"):
            setattr(cls, name, _traced(name, member))
    return cls


@spans_around_use_cases
class OrchestrationEngine(
    Creating,
    Uploading,
    Managing,
    Bulk,
    Working,
    Queuing,
    Scheduling,
    Webhooks,
    Purging,
    Owning,
):
    """The use cases of chute. Every port comes in through the constructor."""
