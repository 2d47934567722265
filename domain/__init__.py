"""chute's domain: jobs, their states and the rules between them. Standard library only."""

from chute.domain.detection import GENERIC_TYPES, DetectionResult
from chute.domain.errors import ChuteError, InvalidTransition, InvalidValue, LeaseNotHeld
from chute.domain.events import CLIENT, RESCUER, SCHEDULER, JobEvent
from chute.domain.job import Job, backoff
from chute.domain.queues import DEFAULT_QUEUE, QueueSettings
from chute.domain.schedules import Schedule
from chute.domain.values import TRANSITIONS, JobStatus, Mode, Priority, SourceType

__all__ = [
    "CLIENT",
    "DEFAULT_QUEUE",
    "GENERIC_TYPES",
    "RESCUER",
    "SCHEDULER",
    "TRANSITIONS",
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
    "backoff",
]
