"""Rows and domain objects: the explicit functions that map one to the other.

Only the columns named here are written: a job's `detection` (kept in its own table)
and `changes` (recorded as events by the use cases) never reach the `jobs` row.
"""

from __future__ import annotations

from functools import cache
from operator import itemgetter
from typing import Any
from uuid import UUID

from chute.application.queries import filter_from_json, filter_to_json
from chute.application.webhooks import Webhook
from chute.domain import (
    DetectionResult,
    Job,
    JobEvent,
    JobStatus,
    Mode,
    Priority,
    QueueSettings,
    Schedule,
    SourceType,
    WebhookDelivery,
)
from sqlalchemy import Result, RowMapping

JOB_COLUMNS = (
    "id", "status", "source_type", "source_uri", "file_name", "file_size", "mime_type",
    "priority", "mode", "metadata", "attempts", "max_attempts", "last_error", "worker_id",
    "lease_seconds", "lease_expires_at", "run_after", "started_at", "finished_at",
    "progress", "progress_message", "result", "created_at", "updated_at", "content_key",
    "queue", "schedule", "trace_context",
)  # fmt: skip


def job_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in JOB_COLUMNS}
    row["status"] = job.status.value
    row["source_type"] = job.source_type.value
    row["priority"] = job.priority.rank  # a number, so that it sorts
    row["mode"] = job.mode.value
    return row


# Dict lookups: calling an enum class with a value costs several times more, per job.
_STATUSES = {status.value: status for status in JobStatus}
_SOURCE_TYPES = {source.value: source for source in SourceType}
_MODES = {mode.value: mode for mode in Mode}
_PRIORITIES = {priority.rank: priority for priority in Priority}


def detection_row(job_id: UUID, result: DetectionResult) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "mime_type": result.mime_type,
        "label": result.label,
        "group_name": result.group,
        "confidence": result.confidence,
        "detector": result.detector,
        "sha256": result.sha256,
        "size": result.size,
        "detected_at": result.detected_at,
    }


DETECTION_PREFIX = "detection_"
"""How a jobs row joined to its detection result names the result's columns."""

# The columns of a detection result that a read of jobs joins, in the order of
# DetectionResult's fields (`to_jobs` builds it from them by position).
DETECTION_COLUMNS = (
    "mime_type", "label", "group_name", "confidence", "detector", "sha256", "size", "detected_at",
)  # fmt: skip


def to_jobs(result: Result[Any]) -> list[Job]:
    """The jobs of `result`'s rows: `jobs` rows, each left-joined to its detection result
    (NULL columns: none). Each job shares its row's JSON containers (`metadata`,
    `result`): the driver decodes them afresh for each row fetched.

    The columns are read by position, found once for the result's columns: looked up by
    name in each row, they cost a third of mapping a page of jobs."""
    job_values, detection_values, detector = _readers(tuple(result.keys()))
    jobs = []
    for row in result:
        fields = dict(zip(JOB_COLUMNS, job_values(row), strict=True))
        fields["status"] = _STATUSES[fields["status"]]
        fields["source_type"] = _SOURCE_TYPES[fields["source_type"]]
        fields["priority"] = _PRIORITIES[fields["priority"]]
        fields["mode"] = _MODES[fields["mode"]]
        job = Job(**fields)
        if row[detector] is not None:  # a NOT NULL column of the result
            job.detection = DetectionResult(*detection_values(row))
        jobs.append(job)
    return jobs


@cache
def _readers(keys: tuple[str, ...]) -> tuple[itemgetter[Any], itemgetter[Any], int]:
    """For rows of these columns: the getter of a job's values (in `JOB_COLUMNS`' order),
    of its detection result's, and the position of the result's `detector`."""
    where = {key: at for at, key in enumerate(keys)}
    detection = [where[DETECTION_PREFIX + name] for name in DETECTION_COLUMNS]
    jobs_at = itemgetter(*(where[name] for name in JOB_COLUMNS))
    return jobs_at, itemgetter(*detection), where[DETECTION_PREFIX + "detector"]


def event_row(event: JobEvent) -> dict[str, Any]:
    return {
        "job_id": event.job_id,
        "at": event.at,
        "from_status": event.from_status.value if event.from_status is not None else None,
        "to_status": event.to_status.value,
        "actor": event.actor,
        "detail": event.detail,
    }


def to_event(row: RowMapping) -> JobEvent:
    before = row["from_status"]
    return JobEvent(
        job_id=row["job_id"],
        at=row["at"],
        from_status=JobStatus(before) if before is not None else None,
        to_status=JobStatus(row["to_status"]),
        actor=row["actor"],
        detail=row["detail"],
    )


def queue_row(settings: QueueSettings) -> dict[str, Any]:
    return {
        "name": settings.name,
        "paused": settings.paused,
        "concurrency_limit": settings.concurrency_limit,
        "updated_at": settings.updated_at,
    }


def to_queue(row: RowMapping) -> QueueSettings:
    return QueueSettings(
        name=row["name"],
        paused=bool(row["paused"]),
        concurrency_limit=row["concurrency_limit"],
        updated_at=row["updated_at"],
    )


def schedule_row(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "job": schedule.job,
        "paused": schedule.paused,
        "next_run_at": schedule.next_run_at,
        "last_run_at": schedule.last_run_at,
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    }


def to_schedule(row: RowMapping) -> Schedule:
    return Schedule(
        name=row["name"],
        cron=row["cron"],
        timezone=row["timezone"],
        job=row["job"],
        paused=bool(row["paused"]),
        next_run_at=row["next_run_at"],
        last_run_at=row["last_run_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def webhook_row(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "filter": filter_to_json(webhook.filter),
        "description": webhook.description,
        "secret": webhook.secret,
        "created_at": webhook.created_at,
        "paused": webhook.paused,
    }


def to_webhook(row: RowMapping) -> Webhook:
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=tuple(row["events"]),
        filter=filter_from_json(row["filter"]),
        description=row["description"],
        secret=row["secret"],
        created_at=row["created_at"],
        paused=row["paused"],
    )


DELIVERY_FIELDS = (
    "id",
    "webhook_id",
    "event_type",
    "job_id",
    "created_at",
    "attempts",
    "last_status_code",
    "last_error",
    "delivered_at",
    "given_up_at",
    "next_attempt_at",
    "lease_expires_at",
)


def delivery_row(delivery: WebhookDelivery) -> dict[str, Any]:
    return {name: getattr(delivery, name) for name in DELIVERY_FIELDS}


def to_delivery(row: RowMapping) -> WebhookDelivery:
    return WebhookDelivery(**{name: row[name] for name in DELIVERY_FIELDS})
