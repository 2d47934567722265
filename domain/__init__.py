"""chute's domain: jobs, their states and the rules between them. Standard library only."""

from chute.domain.detection import GENERIC_TYPES, DetectionResult
from chute.domain.errors import ChuteError, InvalidTransition, InvalidValue, LeaseNotHeld
from chute.domain.job import TRANSITIONS, Job, JobStatus, Mode, Priority, SourceType

__all__ = [
    "GENERIC_TYPES",
    "TRANSITIONS",
    "ChuteError",
    "DetectionResult",
    "InvalidTransition",
    "InvalidValue",
    "Job",
    "JobStatus",
    "LeaseNotHeld",
    "Mode",
    "Priority",
    "SourceType",
]
