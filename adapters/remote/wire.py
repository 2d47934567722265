"""The JSON of the HTTP API read into domain and application objects, and written back."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from chute.application import (
    BulkOutcome,
    JobFilter,
    JobSelection,
    JobSort,
    NewJob,
    QueueCounts,
    QueueView,
)
from chute.application.queries import filter_to_json, rfc3339
from chute.domain import (
    DetectionResult,
    Job,
    JobEvent,
    JobStatus,
    Mode,
    Priority,
    SourceType,
)

Json = dict[str, Any]
Params = list[tuple[str, str]]


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _detection(data: Json | None) -> DetectionResult | None:
    if data is None:
        return None
    return DetectionResult(
        mime_type=data["mime_type"],
        label=data["label"],
        group=data["group"],
        confidence=data["confidence"],
        detector=data["detector"],
        sha256=data["sha256"],
        size=data["size"],
        detected_at=datetime.fromisoformat(data["detected_at"]),
    )


def job_of(data: Json) -> Job:
    """A `Job` from its JSON (the API leaves out where its content is kept and its trace)."""
    return Job(
        id=UUID(data["id"]),
        status=JobStatus(data["status"]),
        source_type=SourceType(data["source_type"]),
        source_uri=data["source_uri"],
        file_name=data["file_name"],
        file_size=data["file_size"],
        mime_type=data["mime_type"],
        priority=Priority(data["priority"]),
        mode=Mode(data["mode"]),
        metadata=data["metadata"],
        attempts=data["attempts"],
        max_attempts=data["max_attempts"],
        queue=data["queue"],
        schedule=data.get("schedule"),
        last_error=data["last_error"],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        detection=_detection(data["detection"]),
        worker_id=data["worker_id"],
        lease_expires_at=_time(data["lease_expires_at"]),
        run_after=_time(data["run_after"]),
        started_at=_time(data["started_at"]),
        finished_at=_time(data["finished_at"]),
        progress=data["progress"],
        progress_message=data["progress_message"],
        result=data["result"],
    )


def jobs_of(data: Json) -> list[Job]:
    """The jobs of `{"jobs": [...]}`."""
    return [job_of(item) for item in data["jobs"]]


def event_of(job_id: UUID, data: Json) -> JobEvent:
    """One item of a job's event list."""
    before = data["from_status"]
    return JobEvent(
        job_id=job_id,
        at=datetime.fromisoformat(data["at"]),
        from_status=JobStatus(before) if before is not None else None,
        to_status=JobStatus(data["to_status"]),
        actor=data["actor"],
        detail=data["detail"],
    )


def new_job_json(new: NewJob) -> Json:
    """The body of a create request for `new`."""
    return {
        "source_type": str(new.source_type),
        "source_uri": new.source_uri,
        "file_name": new.file_name,
        "file_size": new.file_size,
        "mime_type": new.mime_type,
        "priority": str(new.priority),
        "mode": str(new.mode),
        "metadata": new.metadata,
        "max_attempts": new.max_attempts,
        "queue": new.queue,
        "run_after": rfc3339(new.run_after) if new.run_after else None,
    }


def filter_params(f: JobFilter) -> Params:
    """The query parameters of a list that `f` filters."""
    params: Params = []
    for name, values in (
        ("status", f.statuses),
        ("source_type", f.source_types),
        ("priority", f.priorities),
        ("mode", f.modes),
        ("queue", f.queues),
    ):
        params += [(name, str(value)) for value in sorted(values)]
    if f.mime_type is not None:
        params.append(("mime_type", f.mime_type))
    if f.created_after is not None:
        params.append(("created_after", rfc3339(f.created_after)))
    if f.created_before is not None:
        params.append(("created_before", rfc3339(f.created_before)))
    params += [(f"metadata.{key}", value) for key, value in f.metadata]
    return params


def list_params(
    f: JobFilter, sort: JobSort, limit: int, page: int, cursor: str | None, count: bool
) -> Params:
    """The query of one page of a job list."""
    params = [*filter_params(f), ("sort", sort.value), ("limit", str(limit))]
    params += [("cursor", cursor)] if cursor is not None else [("page", str(page))]
    return [*params, ("count", "true" if count else "false")]


def selection_json(selection: JobSelection) -> Json:
    """The body of a bulk action on `selection`."""
    if selection.ids is not None:
        return {"ids": [str(job_id) for job_id in selection.ids]}
    if selection.filter is None:
        return {}  # refused by the server as the engine refuses it
    return {"filter": filter_to_json(selection.filter), "limit": selection.limit}


def bulk_of(data: Json) -> BulkOutcome:
    return BulkOutcome(
        matched=data["matched"],
        changed=data["changed"],
        unchanged=data["unchanged"],
        more=data["more"],
    )


def queue_of(data: Json) -> QueueView:
    counts = data["counts"]
    return QueueView(
        name=data["name"],
        paused=data["paused"],
        concurrency_limit=data["concurrency_limit"],
        counts=QueueCounts(
            pending=counts["pending"],
            scheduled=counts["scheduled"],
            running=counts["running"],
            cancelling=counts["cancelling"],
            completed_last_hour=data["completed_last_hour"],
            failed_last_hour=data["failed_last_hour"],
            oldest_pending_at=_time(data["oldest_pending_at"]),
        ),
    )
