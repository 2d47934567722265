"""The JSON shapes of `/api/v1/queues`."""

from __future__ import annotations

from chute.application import QueueChange, QueueView
from chute.domain import validation as rules
from chute.entrypoints.http.values import JsonInt, UtcTime
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

LOW, HIGH = rules.CONCURRENCY_LIMIT


class QueueUpdateRequest(BaseModel):
    """What to change on a queue; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    paused: StrictBool | None = Field(
        None, description="true: none of its jobs is claimed (running ones go on)"
    )
    concurrency_limit: JsonInt | None = Field(
        None,
        description=f"{LOW} to {HIGH}: at most this many of its jobs running or cancelling "
        "at once, across all workers; null: no limit",
        json_schema_extra={"minimum": LOW, "maximum": HIGH},
    )

    @field_validator("concurrency_limit")
    @classmethod
    def _limit(cls, value: int | None) -> int | None:
        return rules.check_concurrency_limit(value)

    def to_change(self) -> QueueChange:
        return QueueChange(
            paused=self.paused,
            concurrency_limit=self.concurrency_limit,
            set_concurrency_limit="concurrency_limit" in self.model_fields_set,
        )


class QueueCountsResponse(BaseModel):
    """The jobs of a queue now, by status; `scheduled` ones wait for their `run_after`."""

    pending: int = Field(description="pending and ready to be claimed now")
    scheduled: int = Field(description="pending, not to be claimed before their run_after")
    running: int
    cancelling: int


class QueueResponse(BaseModel):
    """A queue: its settings and what is in it."""

    name: str
    paused: bool
    concurrency_limit: int | None
    counts: QueueCountsResponse
    completed_last_hour: int
    failed_last_hour: int
    oldest_pending_at: UtcTime | None = Field(
        description="when the oldest job ready to be claimed was created"
    )

    @classmethod
    def of(cls, view: QueueView) -> QueueResponse:
        c = view.counts
        return cls(
            name=view.name,
            paused=view.paused,
            concurrency_limit=view.concurrency_limit,
            counts=QueueCountsResponse(
                pending=c.pending, scheduled=c.scheduled, running=c.running, cancelling=c.cancelling
            ),
            completed_last_hour=c.completed_last_hour,
            failed_last_hour=c.failed_last_hour,
            oldest_pending_at=c.oldest_pending_at,
        )


class QueueListResponse(BaseModel):
    """Every queue some job or some setting names, by name."""

    items: list[QueueResponse]
