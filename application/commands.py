"""The inputs of the use cases: frozen, keyword-only, checked by `validate`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from chute.application.errors import FieldError, ValidationFailed
from chute.application.queries import ClaimFilter
from chute.domain import DEFAULT_QUEUE, InvalidValue, Mode, Priority, SourceType
from chute.domain import validation as rules


@dataclass(frozen=True, kw_only=True)
class NewJob:
    """A job to create from a reference (a URL or an S3 object)."""

    source_type: SourceType
    source_uri: str
    file_name: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    priority: Priority = Priority.NORMAL
    mode: Mode = Mode.AUTO
    metadata: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 3
    queue: str = DEFAULT_QUEUE
    run_after: datetime | None = None  # not claimed before; a past time means now

    def problems(self, now: datetime | None = None) -> list[FieldError]:
        """Every rule this specification breaks, located by field name; `run_after` is
        checked against `now` when it is given."""
        try:
            source_type = SourceType(self.source_type)
        except ValueError:
            return [FieldError(("source_type",), "must be one of url, s3")]
        return field_problems(
            lambda: rules.check_source_uri(source_type, self.source_uri),
            lambda: self.file_name is None or rules.check_text("file_name", self.file_name),
            lambda: self.mime_type is None or rules.check_mime_type(self.mime_type),
            lambda: rules.check_file_size(self.file_size),
            lambda: rules.check_metadata(self.metadata),
            lambda: rules.check_max_attempts(self.max_attempts),
            lambda: rules.check_queue_name(self.queue),
            lambda: now is None or rules.check_run_after(self.run_after, now),
        )


# The fields of a job that a schedule keeps, as JSON values: those of a create request
# but `run_after` (each tick's job is due at its tick).
TEMPLATE_FIELDS = (
    "source_type", "source_uri", "file_name", "file_size", "mime_type", "priority", "mode",
    "metadata", "max_attempts", "queue",
)  # fmt: skip


def job_template(new: NewJob) -> dict[str, Any]:
    """The job of a schedule as JSON values, to store."""
    values = asdict(new)
    return {name: values[name] for name in TEMPLATE_FIELDS}


def job_of_template(template: dict[str, Any]) -> NewJob:
    """The job a schedule's tick creates, from its stored template."""
    return NewJob(
        **template
        | {
            "source_type": SourceType(template["source_type"]),
            "priority": Priority(template["priority"]),
            "mode": Mode(template["mode"]),
        }
    )


@dataclass(frozen=True, kw_only=True)
class ScheduleSpec:
    """A schedule to create or replace: the job `job` at each time `cron` names in
    `timezone`; none while `paused`."""

    cron: str
    job: NewJob
    timezone: str = "UTC"
    paused: bool = False

    def problems(self) -> list[FieldError]:
        """Every rule this specification breaks but the calendar's own reading of `cron`."""
        job_problems = [FieldError(("job", *e.loc), e.msg, e.type) for e in self.job.problems()]
        if self.job.run_after is not None:
            job_problems.append(
                FieldError(
                    ("job", "run_after"), "a schedule's job is due at its tick: leave it out"
                )
            )
        return (
            field_problems(
                lambda: rules.check_cron_shape(self.cron),
                lambda: rules.check_time_zone(self.timezone),
            )
            + job_problems
        )


def field_problems(*checks: Callable[[], object]) -> list[FieldError]:
    """Run each rule; every value one refused, located by its field name."""
    found = []
    for check in checks:
        try:
            check()
        except InvalidValue as e:
            found.append(FieldError((e.field,), e.message))
    return found


def check_fields(*checks: Callable[[], object]) -> None:
    """Run each rule; raise one `ValidationFailed` with every value it refused."""
    errors = field_problems(*checks)
    if errors:
        raise ValidationFailed(errors)


def checked_claim(
    worker_id: str, limit: int, lease_seconds: int, filter: ClaimFilter | None
) -> ClaimFilter:
    """The filter of a claim, once its values are checked (`ValidationFailed`)."""
    filt = filter or ClaimFilter()
    check_fields(
        lambda: rules.check_worker_id(worker_id),
        lambda: rules.check_claim_limit(limit),
        lambda: rules.check_lease_seconds(lease_seconds),
        lambda: filt.mime_type is None or rules.check_mime_pattern(filt.mime_type),
    )
    check_fields(*(partial(rules.check_queue_name, q, "queues") for q in filt.queues))
    return filt


def validate_batch(jobs: Sequence[NewJob], now: datetime | None = None) -> None:
    """Raise `ValidationFailed` naming each bad item by its index, or return."""
    errors = [
        FieldError((index, *error.loc), error.msg, error.type)
        for index, job in enumerate(jobs)
        for error in job.problems(now)
    ]
    if errors:
        raise ValidationFailed(errors)


def fingerprint(jobs: Sequence[NewJob]) -> str:
    """A digest of a create request, to tell a replay from a different request."""
    body = [asdict(job) for job in jobs]
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, kw_only=True)
class UploadOptions:
    """What applies to every file of one upload."""

    priority: Priority = Priority.NORMAL
    mode: Mode = Mode.AUTO
    detect: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    queue: str = DEFAULT_QUEUE
    run_after: datetime | None = None

    def problems(self, now: datetime) -> list[FieldError]:
        """The rules on the queue and `run_after` that these options break."""
        return field_problems(
            lambda: rules.check_queue_name(self.queue),
            lambda: rules.check_run_after(self.run_after, now),
        )


@dataclass(frozen=True, kw_only=True)
class UploadFile:
    """One file to upload: the client's name and type (never trusted) and its bytes."""

    filename: str | None
    content: AsyncIterable[bytes]
    declared_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class UploadLimits:
    """The limits every upload is held to."""

    max_file_bytes: int = 100 * 1024 * 1024
    max_files: int = 20
    allowed_types: tuple[str, ...] = ()  # media types or "type/*"; empty allows all

    def allows(self, mime_type: str) -> bool:
        return not self.allowed_types or any(
            rules.mime_matches(mime_type, pattern) for pattern in self.allowed_types
        )
