"""chute's domain: jobs, their states and the rules between them. Standard library only."""

from chute.domain.detection import GENERIC_TYPES, DetectionResult
from chute.domain.errors import ChuteError, InvalidTransition, InvalidValue, LeaseNotHeld
from chute.domain.events import CLIENT, RESCUER, SCHEDULER, JobEvent
from chute.domain.job import Job, backoff
from chute.domain.queues import DEFAULT_QUEUE, QueueSettings
from chute.domain.schedules import Schedule
from chute.domain.values import TRANSITIONS, JobStatus, Mode, Priority, SourceType
from chute.domain.webhooks import (
    DEFAULT_WEBHOOK_EVENTS,
    WEBHOOK_EVENTS,
    WebhookDelivery,
)

__all__ = [
    "CLIENT",
    "DEFAULT_QUEUE",
    "DEFAULT_WEBHOOK_EVENTS",
    "GENERIC_TYPES",
    "RESCUER",
    "SCHEDULER",
    "TRANSITIONS",
    "WEBHOOK_EVENTS",
    "ChuteError",
    "DetectionResult",
    "InvalidTransition",
    "InvalidValue",
    "Job",
    "JobEvent",
    "JobStatus",
    "LeaseNotHeld",
    "Mode",
    "Priority",
    "QueueSettings",
    "Schedule",
    "SourceType",
    "WebhookDelivery",
    "backoff",
]
