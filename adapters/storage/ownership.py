"""The ownership marker every file store keeps at its root: which database it belongs to.

A small JSON file, `chute-deployment.json`, beside the stored files' folders:

    {"deployment_id": "<uuid of the database>", "claimed_at": "<RFC 3339 time>"}

Its name is no uuid, so the orphan sweep, which lists only uuid-named folders, never
sees it. Deleting it gives the storage to the next database that starts on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

from chute.application.errors import StorageUnavailable

MARKER = "chute-deployment.json"


def marker_content(deployment_id: UUID, claimed_at: datetime | None = None) -> bytes:
    """The marker's bytes for a claim by `deployment_id` (now, unless `claimed_at`)."""
    when = (claimed_at or datetime.now(UTC)).astimezone(UTC)
    body = {"deployment_id": str(deployment_id), "claimed_at": when.isoformat()}
    return json.dumps(body, indent=2).encode() + b"\n"


def marker_owner(content: bytes) -> UUID:
    """The database a marker names; `StorageUnavailable` when it is not a marker."""
    try:
        return UUID(json.loads(content)["deployment_id"])
    except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        raise StorageUnavailable(
            f"The storage's {MARKER} is not chute's ownership marker: repair or delete it."
        ) from exc
