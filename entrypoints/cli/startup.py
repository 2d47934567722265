"""The check `chute serve`, `chute worker` and `chute purge` make before they start: that
the storage belongs to the database (one storage, one database), so that no process
ever removes the files of another deployment. Storage that names no owner yet is
claimed for this database."""

from __future__ import annotations

from chute.adapters.storage.ownership import MARKER
from chute.application import (
    OrchestrationEngine,
    ServiceUnavailable,
    StorageOwnedElsewhere,
    StorageUnavailable,
)
from chute.entrypoints.bootstrap import build_container, engine_of, settled
from chute.entrypoints.settings import Settings

MISMATCH_EXIT = 2  # a setting must change: starting again as it is cannot help
UNAVAILABLE_EXIT = 1  # may pass: a server away, credentials being rotated


class StartRefused(Exception):
    """The command must not start: its message is the one line to print."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def claim_storage(engine: OrchestrationEngine, settings: Settings) -> None:
    """Claim the storage for the database, or raise `StartRefused` saying what to change."""
    storage = f"the storage at CHUTE_STORAGE_URL ({settings.storage.url})"
    try:
        await engine.claim_storage()
    except StorageOwnedElsewhere as e:
        raise StartRefused(
            f"{storage} belongs to another database ({e.owner}) than the one at "
            f"CHUTE_DATABASE_URL ({e.deployment_id}): set CHUTE_STORAGE_URL to this "
            "database's storage or CHUTE_DATABASE_URL to that storage's database (to give "
            f"the storage to this database instead, delete its {MARKER})",
            MISMATCH_EXIT,
        ) from None
    except StorageUnavailable as e:
        raise StartRefused(f"{storage} cannot be used: {e}", UNAVAILABLE_EXIT) from None
    except ServiceUnavailable as e:
        raise StartRefused(
            f"the database at CHUTE_DATABASE_URL cannot be used: {e}", UNAVAILABLE_EXIT
        ) from None


async def check_storage(settings: Settings) -> None:
    """`claim_storage` on a container of its own, closed again (for `chute serve`, whose
    app builds its own container inside the server's event loop)."""
    container = build_container(settings)
    try:
        await claim_storage(await engine_of(container), settings)
    finally:
        await settled(container.shutdown_resources())
