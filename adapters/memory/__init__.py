"""In-memory adapters: a real, shipped implementation of the storage ports that keeps
everything in the process. Services can run the engine on them; tests use them for speed.
They pass the same contract suites as the SQLAlchemy and local-folder adapters."""

from chute.adapters.memory.database import MemoryDatabase, MemoryUnitOfWork
from chute.adapters.memory.files import MemoryFileStore

__all__ = ["MemoryDatabase", "MemoryFileStore", "MemoryUnitOfWork"]
