"""Builders of engines, domain objects and use-case inputs with sensible defaults, for
every test tier.

Each builder takes keyword overrides for any field, so a test names only what matters to it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from chute.adapters.cron import CronCalendar
from chute.adapters.memory import MemoryDatabase, MemoryFileStore
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.application import OrchestrationEngine
from chute.application.commands import NewJob
from chute.domain import DetectionResult, Job, SourceType

BASE_TIME = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """`BASE_TIME` moved by `seconds` (negative: earlier)."""
    return BASE_TIME + timedelta(seconds=seconds)


def make_job(**overrides: Any) -> Job:
    """A new pending url job created at `BASE_TIME`, with a random id."""
    created = overrides.pop("created_at", BASE_TIME)
    fields: dict[str, Any] = {
        "id": uuid4(),
        "source_type": SourceType.URL,
        "source_uri": "https://example.org/report.pdf",
        "file_name": "report.pdf",
        "file_size": 48213,
        "mime_type": "application/pdf",
        "created_at": created,
        "updated_at": created,
    }
    return Job(**fields | overrides)


def make_detection(**overrides: Any) -> DetectionResult:
    """A confident detection of a PDF file."""
    fields: dict[str, Any] = {
        "mime_type": "application/pdf",
        "label": "pdf",
        "group": "document",
        "confidence": 0.99,
        "detector": "magika",
        "sha256": "ab" * 32,
        "size": 48213,
        "detected_at": BASE_TIME,
    }
    return DetectionResult(**fields | overrides)


def make_new_job(**overrides: Any) -> NewJob:
    """A valid request to create a url job."""
    fields: dict[str, Any] = {
        "source_type": SourceType.URL,
        "source_uri": "https://example.org/report.pdf",
    }
    return NewJob(**fields | overrides)


def make_engine(**overrides: Any) -> OrchestrationEngine:
    """An engine on the in-memory adapters with the system clock and UUIDv7 ids, and no
    detectors; any port or setting of `OrchestrationEngine` can be overridden."""
    ports: dict[str, Any] = {
        "uow": MemoryDatabase(),
        "files": MemoryFileStore(),
        "detectors": {},
        "clock": SystemClock(),
        "ids": UuidV7Generator(),
        "calendar": CronCalendar(),
    }
    return OrchestrationEngine(**ports | overrides)


def sqlite_url(path: Path) -> str:
    """The database URL of the SQLite file at `path`."""
    return f"sqlite+aiosqlite:///{path}"
