"""The use case that ties a storage to its database, so that no deployment ever removes
another deployment's files."""

from __future__ import annotations

import logging
from uuid import UUID

from chute.application.errors import StorageOwnedElsewhere
from chute.application.use_cases.base import EngineBase

log = logging.getLogger("chute.engine")


class Owning(EngineBase):
    async def claim_storage(self) -> UUID:
        """Make sure the storage belongs to this database: claim it when it names no owner
        yet, raise `StorageOwnedElsewhere` when it names another. Returns the database's
        id. Processes call it at start; the orphan sweep, before it removes anything."""
        async with self._uow(read_only=True) as uow:
            deployment_id = await uow.deployment_id()
        owner = await self._files.claim_ownership(deployment_id)
        if owner != deployment_id:
            raise StorageOwnedElsewhere(owner, deployment_id)
        return deployment_id
