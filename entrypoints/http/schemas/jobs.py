"""The JSON shapes of the HTTP API. Value rules come from `chute.domain.validation`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Protocol, Self
from uuid import UUID

from chute.application import JobFilter, JobSort, NewJob
from chute.domain import (
    DEFAULT_QUEUE,
    DetectionResult,
    Job,
    JobEvent,
    JobStatus,
    Mode,
    Priority,
    SourceType,
)
from chute.domain import validation as rules
from chute.entrypoints.http.values import (
    AwareTime,
    JsonInt,
    MimePattern,
    MimeType,
    QueueName,
    Text,
    UtcTime,
)
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

# -- requests ------------------------------------------------------------------------------

# A BIGINT column holds no more; a larger size would fail in the database instead.

# Far beyond any real listing (200 billion jobs at the largest `limit`).
MAX_PAGE = 10**9

METADATA_PREFIX = "metadata."


class ReferenceSourceType(StrEnum):
    """The source types a job can be created with: `upload` jobs come from /upload only."""

    URL = SourceType.URL.value
    S3 = SourceType.S3.value


def _not_upload(value: object) -> object:
    if value == SourceType.UPLOAD:
        raise ValueError("upload jobs are made only by POST /api/v1/upload")
    return value


# A `SourceType` to the code; to clients, the enum of the types they may send (one shared
# component, not an enum spelt out in each schema that takes it).
CreatableSourceType = Annotated[
    SourceType, BeforeValidator(_not_upload, json_schema_input_type=ReferenceSourceType)
]

# Necessary, not sufficient: an http(s) URL or an s3:// one with a valid bucket name, with
# no space or control character. The domain's check also parses the URL, matches it with
# `source_type`, and refuses an IP address as a bucket name.
SOURCE_URI_PATTERN = (
    r"^([Hh][Tt][Tt][Pp][Ss]?://[^\x00-\x20\x7f]+"
    r"|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\x00-\x20\x7f]+)$"
)
# A signed 64-bit integer: written as the bound past it, which a JSON number (a double,
# to many readers) holds exactly, unlike 2**63 - 1.
FileSize = Annotated[
    JsonInt,
    WithJsonSchema({"type": "integer", "minimum": 0, "exclusiveMaximum": rules.MAX_FILE_SIZE + 1}),
]


class JobCreateRequest(BaseModel):
    """A job to create from a reference: a URL or an S3 object."""

    model_config = ConfigDict(extra="forbid")

    source_type: CreatableSourceType = Field(
        description="`url` or `s3`; `upload` jobs come from /upload"
    )
    source_uri: str = Field(
        description="http(s) URL, or s3://bucket/key; at most 2048 characters",
        examples=["https://example.org/report.pdf"],
        json_schema_extra={
            "minLength": 1,
            "maxLength": rules.MAX_URI_LENGTH,
            "pattern": SOURCE_URI_PATTERN,
        },
    )
    file_name: Text | None = None
    # Strict numbers: "12" is not a size, and true is not a number of attempts (3.0 is 3).
    file_size: FileSize | None = Field(None, description="bytes, 0 to 2^63 - 1")
    mime_type: MimeType | None = Field(None, description="type/subtype")
    priority: Priority = Priority.NORMAL
    mode: Mode = Mode.AUTO
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="any JSON object of at most 16 KiB"
    )
    max_attempts: JsonInt = Field(
        3,
        description="1 to 20",
        json_schema_extra={"minimum": rules.MIN_ATTEMPTS, "maximum": rules.MAX_ATTEMPTS},
    )
    queue: QueueName = Field(
        DEFAULT_QUEUE, description="1 to 64 characters of a-z, 0-9, `_`, `.` and `-`"
    )
    run_after: AwareTime | None = Field(
        None,
        description="not claimed before this time (RFC 3339 with offset); a past time "
        "means now; at most 366 days ahead",
    )

    @field_validator("source_uri")
    @classmethod
    def _uri_fits_type(cls, value: str, info: ValidationInfo) -> str:
        source_type = info.data.get("source_type")
        if source_type is None:  # already refused; do not report the uri as well
            return value
        return rules.check_source_uri(source_type, value)

    @field_validator("file_size")
    @classmethod
    def _size(cls, value: int | None) -> int | None:
        return rules.check_file_size(value)

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, Any]) -> dict[str, Any]:
        return rules.check_metadata(value)

    @field_validator("max_attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        return rules.check_max_attempts(value)

    def to_new_job(self) -> NewJob:
        """The application's input for this request."""
        return NewJob(**self.model_dump())


class BatchCreateRequest(BaseModel):
    """Many jobs at once: all are created, or none."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreateRequest] = Field(min_length=1, max_length=1000)

    def to_new_jobs(self) -> list[NewJob]:
        return [job.to_new_job() for job in self.jobs]


class FilterFields(Protocol):
    """The list's filters, as the list query and a bulk action's filter both carry them."""

    status: list[JobStatus]
    source_type: list[SourceType]
    priority: list[Priority]
    mode: list[Mode]
    mime_type: str | None
    created_after: datetime | None
    created_before: datetime | None
    queue: list[str]


def job_filter(fields: FilterFields, metadata: Iterable[tuple[str, str]]) -> JobFilter:
    """The application's filter for `fields` and the (key, value) metadata filters."""
    return JobFilter(
        statuses=frozenset(fields.status),
        source_types=frozenset(fields.source_type),
        priorities=frozenset(fields.priority),
        modes=frozenset(fields.mode),
        mime_type=fields.mime_type,
        created_after=fields.created_after,
        created_before=fields.created_before,
        queues=frozenset(fields.queue),
        metadata=tuple(sorted(metadata)),
    )


class MetadataParameters(BaseModel):
    """A query that takes `metadata.<key>=<value>` filters besides its fields; unknown
    parameters are refused, as in bodies."""

    model_config = ConfigDict(extra="forbid")

    # `metadata.<key>=<value>` parameters, taken out before the fields are validated (a
    # name per key cannot be a field); the engine checks them. Not in the OpenAPI
    # description, which cannot describe parameter names made by the client.
    _metadata: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _metadata_parameters(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        if not isinstance(data, dict):
            return handler(data)
        pairs: list[tuple[str, str]] = []
        rest: dict[str, Any] = {}
        for name, value in data.items():
            key = name.removeprefix(METADATA_PREFIX)
            if key and key != name:
                given = value if isinstance(value, list) else [value]
                pairs += [(key, str(v)) for v in given]
            else:  # `metadata.` with no key is refused as any unknown parameter
                rest[name] = value
        query = handler(rest)
        query._metadata = pairs
        return query


class JobListQuery(MetadataParameters):
    """The query of `GET /api/v1/jobs`."""

    # Bounded so that the offset it makes fits the database's 64-bit integers.
    page: int = Field(
        1, ge=1, le=MAX_PAGE, description="ignored (and answered as null) with a cursor"
    )
    limit: int = Field(50, ge=1, le=200)
    status: list[JobStatus] = Field(default_factory=list)
    source_type: list[SourceType] = Field(default_factory=list)
    priority: list[Priority] = Field(default_factory=list)
    mode: list[Mode] = Field(default_factory=list)
    mime_type: MimePattern | None = Field(None, description="exact, or type/*")
    created_after: AwareTime | None = Field(None, description="inclusive; RFC 3339 with offset")
    created_before: AwareTime | None = Field(None, description="exclusive; RFC 3339 with offset")
    queue: list[QueueName] = Field(default_factory=list, description="jobs of this queue (or any)")
    sort: JobSort = JobSort.NEWEST
    cursor: Text | None = Field(None, max_length=1024, description="`next_cursor` of a page")
    count: bool = Field(True, description="false: no count is made; total and pages are null")

    def to_filter(self) -> JobFilter:
        """The application's filter for this query."""
        return job_filter(self, self._metadata)


# -- responses -----------------------------------------------------------------------------


class DetectionResponse(BaseModel):
    """What content detection found out about an uploaded file."""

    mime_type: str
    label: str
    group: str
    confidence: float
    detector: str
    sha256: str
    size: int
    detected_at: UtcTime

    @classmethod
    def of(cls, result: DetectionResult) -> DetectionResponse:
        return cls.model_validate(result, from_attributes=True)


class JobResponse(BaseModel):
    """A job as the API shows it."""

    id: UUID
    status: JobStatus
    source_type: SourceType
    source_uri: str
    file_name: str | None
    file_size: int | None
    mime_type: str | None
    priority: Priority
    mode: Mode
    metadata: dict[str, Any]
    attempts: int
    max_attempts: int
    queue: str
    schedule: str | None = Field(description="the schedule that made the job, if one did")
    last_error: str | None
    created_at: UtcTime
    updated_at: UtcTime
    detection: DetectionResponse | None
    worker_id: str | None
    lease_expires_at: UtcTime | None
    run_after: UtcTime | None
    started_at: UtcTime | None
    finished_at: UtcTime | None
    progress: int | None
    progress_message: str | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, job: Job) -> JobResponse:
        # Read from the job's attributes (its detection's too) by pydantic itself: the
        # same model, in half the time of a dict of fields passed as keywords.
        return cls.model_validate(job, from_attributes=True)


class JobsResponse(BaseModel):
    """Several jobs, in the order of the request that made them."""

    jobs: list[JobResponse]

    @classmethod
    def of(cls, jobs: list[Job]) -> Self:
        return cls(jobs=[JobResponse.of(job) for job in jobs])


class BatchCreateResponse(JobsResponse):
    """The jobs of a batch create, in request order."""


class UploadResponse(JobsResponse):
    """One job per uploaded file, in request order."""


class JobListResponse(BaseModel):
    """One page of jobs; `total`, `total_exact`, `pages` null with `count=false`."""

    items: list[JobResponse]
    total: int | None = Field(
        description="the matching jobs, counted up to CHUTE_COUNT_CAP (1,000 by default)"
    )
    total_exact: bool | None = Field(
        description="false when more jobs match than the cap: `total` is then the cap"
    )
    page: int | None = Field(description="null with a cursor")
    limit: int
    pages: int | None = Field(description="follows `total`: ceil(total / limit)")
    next_cursor: str | None


class FieldErrorResponse(BaseModel):
    """One invalid value: where (`loc`), what is wrong (`msg`), and its kind (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class ProblemResponse(BaseModel):
    """An RFC 9457 problem (served as `application/problem+json`)."""

    type: str = Field(examples=["job-not-found"])
    title: str = Field(examples=["Job not found"])
    status: int = Field(examples=[404])
    detail: str
    instance: str = Field(examples=["/api/v1/jobs/0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41"])
    request_id: str | None
    errors: list[FieldErrorResponse] | None = Field(
        None, description="with `validation-error` only"
    )


class StatusResponse(BaseModel):
    """The answer of the health checks."""

    status: str


class JobEventResponse(BaseModel):
    """One status change of a job; `from_status` is null for its creation."""

    at: UtcTime
    from_status: JobStatus | None
    to_status: JobStatus
    actor: str = Field(description='"client", "rescuer", or the id of the reporting worker')
    detail: str | None

    @classmethod
    def of(cls, event: JobEvent) -> JobEventResponse:
        return cls.model_validate(event, from_attributes=True)


class JobEventListResponse(BaseModel):
    """Every status change of a job, oldest first."""

    items: list[JobEventResponse]

    @classmethod
    def of(cls, events: list[JobEvent]) -> JobEventListResponse:
        return cls(items=[JobEventResponse.of(event) for event in events])
