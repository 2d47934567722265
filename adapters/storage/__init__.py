"""Where content is kept: the `FileStore` adapters (a local folder, an S3-compatible
bucket; the in-memory one is in `chute.adapters.memory`)."""

from chute.adapters.storage.local import LocalFileStore
from chute.adapters.storage.s3 import S3FileStore

__all__ = ["LocalFileStore", "S3FileStore"]
