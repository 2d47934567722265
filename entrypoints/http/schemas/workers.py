"""The JSON shapes of the worker routes. Value rules come from `chute.domain.validation`."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from chute.application import ClaimFilter
from chute.domain import Mode, SourceType
from chute.domain import validation as rules
from chute.entrypoints.http.schemas.jobs import FieldErrorResponse, JobResponse, JobsResponse
from chute.entrypoints.http.values import JsonInt, MimePattern, QueueName, Text
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
)


def _bounds(low: int, high: int) -> dict[str, Any]:
    """The domain's bounds of a number, shown to clients (the domain rule enforces them)."""
    return {"minimum": low, "maximum": high}


# Each value is checked by its one rule in the domain (the engine checks again): the
# schema only shows the bounds to clients.
WorkerId = Annotated[
    str,
    AfterValidator(rules.check_worker_id),
    Field(
        description=f"1 to {rules.MAX_WORKER_ID} characters",
        examples=["w1"],
        json_schema_extra={"minLength": 1, "maxLength": rules.MAX_WORKER_ID},
    ),
]
LeaseSeconds = Annotated[
    JsonInt,
    AfterValidator(rules.check_lease_seconds),
    Field(json_schema_extra=_bounds(*rules.LEASE_SECONDS)),
]
ClaimLimit = Annotated[
    JsonInt,
    AfterValidator(rules.check_claim_limit),
    Field(json_schema_extra=_bounds(*rules.CLAIM_LIMIT)),
]
Progress = Annotated[
    JsonInt, AfterValidator(rules.check_progress), Field(json_schema_extra=_bounds(0, 100))
]


def _one_or_many(kind: type[StrEnum]) -> Callable[[object], object]:
    """Take one value of a filter as a list of one: a filter takes either."""

    def as_list(value: object) -> object:
        # A single value is checked here, so that its error is located at the field
        # itself rather than at a list index the client never sent.
        if isinstance(value, str):
            try:
                return [kind(value)]
            except ValueError:
                allowed = ", ".join(repr(member.value) for member in kind)
                raise ValueError(f"must be one of {allowed}, or a list of them") from None
        return value

    return as_list


# To clients, one value or a list of the shared enum's values.
ModeFilter = Annotated[
    list[Mode], BeforeValidator(_one_or_many(Mode), json_schema_input_type=Mode | list[Mode])
]
SourceTypeFilter = Annotated[
    list[SourceType],
    BeforeValidator(_one_or_many(SourceType), json_schema_input_type=SourceType | list[SourceType]),
]


class ClaimOptions(BaseModel):
    """Up to `limit` due jobs, each under a lease of `lease_seconds`, of these filters."""

    model_config = ConfigDict(extra="forbid")

    limit: ClaimLimit = Field(1, description="1 to 100")
    lease_seconds: LeaseSeconds = Field(60, description="5 to 3600")
    mode: ModeFilter = Field(
        default_factory=list, description="only jobs of this mode (or of any of these)"
    )
    source_type: SourceTypeFilter = Field(
        default_factory=list, description="only jobs of this source type (or any of these)"
    )
    mime_type: MimePattern | None = Field(None, description="exact, or type/*")
    queues: list[QueueName] = Field(
        default_factory=list,
        max_length=100,
        description="only jobs of these queues; any when empty",
    )

    def to_filter(self) -> ClaimFilter:
        return ClaimFilter(
            modes=frozenset(self.mode),
            source_types=frozenset(self.source_type),
            mime_type=self.mime_type,
            queues=frozenset(self.queues),
        )


class ClaimRequest(ClaimOptions):
    """A worker asks for up to `limit` due jobs, each under a lease of `lease_seconds`."""

    worker_id: WorkerId


class HeartbeatRequest(BaseModel):
    """The holder of a job extends its lease and, optionally, reports progress."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    lease_seconds: LeaseSeconds | None = Field(
        None, description="5 to 3600; by default the length the job was claimed with"
    )
    progress: Progress | None = Field(None, description="0 to 100; left as it was when absent")
    progress_message: Text | None = Field(None, description="left as it was when absent")


class CompleteRequest(BaseModel):
    """The holder of a job reports the work done."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    result: Annotated[dict[str, Any], AfterValidator(rules.check_result)] | None = Field(
        None, description="any JSON object of at most 1 MiB as compact UTF-8 JSON"
    )


MAX_COMPLETIONS = 100


class Completion(BaseModel):
    """One job of a batch completion. Its result is checked by the engine, so that an
    invalid one refuses this item only."""

    model_config = ConfigDict(extra="forbid")

    job_id: UUID
    result: dict[str, Any] | None = Field(
        None, description="any JSON object of at most 1 MiB as compact UTF-8 JSON"
    )


class CompleteManyRequest(BaseModel):
    """The holder of jobs reports the work on each done, in one request."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    jobs: list[Completion] = Field(
        min_length=1,
        max_length=MAX_COMPLETIONS,
        description=f"1 to {MAX_COMPLETIONS}, each taken as if sent alone, in this order",
    )
    claim: ClaimOptions | None = Field(
        None,
        description="then claim the next jobs in the same transaction, as `POST "
        "/api/v1/jobs/claim` would with these values (what `chute worker --server` sends "
        "for the slots the completed jobs free); the answer's `jobs` holds them",
    )


class ItemProblem(BaseModel):
    """Why one item was refused: the problem the single route would answer for it."""

    type: str = Field(examples=["lease-not-held"])
    title: str = Field(examples=["Lease not held"])
    status: int = Field(examples=[409])
    detail: str
    errors: list[FieldErrorResponse] | None = Field(
        None, description="with `validation-error` only; `loc` names the item"
    )


class CompletedItem(BaseModel):
    """An item whose job is now completed."""

    model_config = ConfigDict(extra="forbid")

    job: JobResponse


class RefusedItem(BaseModel):
    """An item refused alone: its job is as it was."""

    model_config = ConfigDict(extra="forbid")

    problem: ItemProblem


class CompleteManyResponse(BaseModel):
    """One item per job of the request, in its order; with `claim`, the jobs claimed."""

    items: list[CompletedItem | RefusedItem]
    jobs: list[JobResponse] = Field(
        description="the jobs `claim` claimed, in claim order (none without a `claim`)"
    )


class FailRequest(BaseModel):
    """The holder of a job reports a failed attempt."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    error: Annotated[str, AfterValidator(rules.check_error)] = Field(
        description="at most 8192 bytes of UTF-8; kept as the job's last_error",
        # Characters, not bytes: what a schema can say (more characters are more bytes).
        json_schema_extra={"maxLength": rules.MAX_ERROR_BYTES},
    )
    retryable: StrictBool = Field(
        True, description="false: the job fails for good, whatever attempts are left"
    )


class ClaimResponse(JobsResponse):
    """The jobs handed to the worker (possibly none), in claim order."""


class ReleaseRequest(BaseModel):
    """The holder of a job gives it back unfinished (it is stopping)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId


class RedetectRequest(BaseModel):
    """The holder of a job asks for its stored content to be detected again."""

    model_config = ConfigDict(extra="forbid")

    worker_id: WorkerId
    mode: Mode = Field(description="the detector to use: fast, accurate or auto")
