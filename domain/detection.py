"""What chute found out about a piece of content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """The detected type of stored content, with the detector that said so."""

    mime_type: str
    label: str
    group: str
    confidence: float
    detector: str
    sha256: str
    size: int
    detected_at: datetime

    @property
    def is_generic(self) -> bool:
        """True when the type names no format: plain text or opaque bytes."""
        return self.mime_type in GENERIC_TYPES


GENERIC_TYPES = frozenset({"text/plain", "application/octet-stream"})
