"""Errors the use cases raise; the HTTP adapter maps each to one problem type."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from chute.domain.errors import ChuteError


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid value: where it is (`loc`), what is wrong, and a machine-readable kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"


class ValidationFailed(ChuteError):
    """The input breaks one or more rules; nothing was changed."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))


class JobNotFound(ChuteError):
    def __init__(self, job_id: UUID) -> None:
        self.job_id = job_id
        super().__init__(f"No job has id {job_id}.")


class QueueNotFound(ChuteError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No job or setting names the queue {name!r}.")


class ScheduleNotFound(ChuteError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"No schedule is named {name!r}.")


class WebhookNotFound(ChuteError):
    def __init__(self, webhook_id: UUID) -> None:
        self.webhook_id = webhook_id
        super().__init__(f"No webhook has id {webhook_id}.")


class ContentNotFound(ChuteError):
    def __init__(self, job_id: UUID | str) -> None:
        super().__init__(f"Job {job_id} has no stored content.")


class IdempotencyKeyReused(ChuteError):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was used with a different request.")


class IdempotencyKeyInUse(ChuteError):
    def __init__(self) -> None:
        super().__init__("A request with this Idempotency-Key is still being processed.")


class IdempotencyConflict(ChuteError):
    """Raised by a repository when another transaction stored the same key first."""


class InvalidCursor(ChuteError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"The cursor cannot be used: {reason}.")


class PayloadTooLarge(ChuteError):
    pass


class UnsupportedMediaType(ChuteError):
    pass


class ServiceUnavailable(ChuteError):
    """The database or the storage cannot be reached."""


class StorageUnavailable(ServiceUnavailable):
    """The storage cannot be reached or used (not the database)."""


class InsufficientStorage(ChuteError):
    """The storage folder is full."""


class StorageOwnedElsewhere(ChuteError):
    """The storage belongs to another database than this one: using it could delete
    another deployment's files."""

    def __init__(self, owner: UUID, deployment_id: UUID) -> None:
        self.owner, self.deployment_id = owner, deployment_id
        super().__init__(
            f"The storage belongs to the database {owner}, not to this one ({deployment_id})."
        )
