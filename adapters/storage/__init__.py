"""Where content is kept: the `FileStore` adapters (the local folder; the in-memory one is
in `chute.adapters.memory`)."""

from chute.adapters.storage.local import LocalFileStore

__all__ = ["LocalFileStore"]
