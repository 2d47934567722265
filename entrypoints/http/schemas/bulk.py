"""The JSON shapes of the bulk actions: `POST /api/v1/jobs/cancel` and `/retry`."""

from __future__ import annotations

import json
from typing import Self
from uuid import UUID

from chute.application import BulkOutcome, JobFilter, JobSelection
from chute.domain import JobStatus, Mode, Priority, SourceType
from chute.domain import validation as rules
from chute.entrypoints.http.schemas.jobs import job_filter
from chute.entrypoints.http.values import AwareTime, MimePattern, QueueName
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

MAX_IDS = 1000
MAX_LIMIT = 10_000

# A metadata filter's value: a string as it is, anything else by its JSON text, so that
# {"batch": 7} selects what `?metadata.batch=7` lists.
MetadataValue = StrictStr | StrictInt | StrictFloat | StrictBool | None


class BulkFilter(BaseModel):
    """The filters of `GET /api/v1/jobs`, as JSON; all must hold."""

    model_config = ConfigDict(extra="forbid")

    status: list[JobStatus] = Field(default_factory=list)
    source_type: list[SourceType] = Field(default_factory=list)
    priority: list[Priority] = Field(default_factory=list)
    mode: list[Mode] = Field(default_factory=list)
    mime_type: MimePattern | None = Field(None, description="exact, or type/*")
    created_after: AwareTime | None = Field(None, description="inclusive; RFC 3339 with offset")
    created_before: AwareTime | None = Field(None, description="exclusive; RFC 3339 with offset")
    queue: list[QueueName] = Field(default_factory=list)
    metadata: dict[str, MetadataValue] = Field(
        default_factory=dict,
        description="at most 5 top-level keys; a string matches an equal string, or a "
        "number, true, false or null whose JSON text it is; a number, boolean or null "
        "matches by its JSON text",
    )

    @field_validator("metadata")
    @classmethod
    def _storable(cls, value: dict[str, MetadataValue]) -> dict[str, MetadataValue]:
        for key, given in value.items():
            rules.check_text("metadata", key)
            if isinstance(given, str):
                rules.check_text("metadata", given)
        return value

    def to_filter(self) -> JobFilter:
        """The application's filter for these values."""
        return job_filter(self, ((k, _text(v)) for k, v in self.metadata.items()))


def _text(value: MetadataValue) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class BulkRequest(BaseModel):
    """The jobs to act on: `ids`, or `filter` with `limit`."""

    model_config = ConfigDict(extra="forbid")

    ids: list[UUID] | None = Field(None, min_length=1, max_length=MAX_IDS)
    filter: BulkFilter | None = None
    limit: int | None = Field(
        None, ge=1, le=MAX_LIMIT, description="with `filter` only: 1 to 10,000, default 1000"
    )

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        if self.ids is not None and self.limit is not None:
            raise ValueError("limit goes with filter, not with ids")
        return self

    def to_selection(self) -> JobSelection:
        """The application's input for this request."""
        if self.ids is not None:
            return JobSelection(ids=tuple(self.ids))
        assert self.filter is not None
        limit = self.limit if self.limit is not None else JobSelection().limit
        return JobSelection(filter=self.filter.to_filter(), limit=limit)


class BulkResponse(BaseModel):
    """What a bulk action did."""

    matched: int = Field(
        description="the jobs acted on: at most `limit`, or the ids that name a job"
    )
    changed: int = Field(description="the jobs that made the transition, each with its event")
    unchanged: int = Field(description="the jobs that could not (unknown ids included)")
    more: bool = Field(description="more jobs matched the filter than `limit`: call again")

    @classmethod
    def of(cls, outcome: BulkOutcome) -> BulkResponse:
        return cls.model_validate(outcome, from_attributes=True)
