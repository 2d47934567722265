"""chute's configuration: environment variables prefixed `CHUTE_`, read once at start-up."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

from chute.adapters.s3 import split_s3_uri
from chute.application import DEFAULT_COUNT_CAP
from chute.domain.validation import check_mime_pattern
from chute.entrypoints.http.keys import entry_digest, split_entries
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIB = 1024 * 1024
KIB = 1024
DEFAULT_STORAGE = "/tmp/pipeline"
# S3's rules for bucket names (3 to 63 of a-z 0-9 . -, a letter or digit at each end);
# also what keeps credentials (`s3://key:secret@bucket`) out of a bucket name.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True, kw_only=True)
class StorageLocation:
    """Where content is kept: a local folder (`path`), or a bucket and key prefix of an
    S3-compatible store. `url` is the setting as given, for messages (it holds no
    secret: S3 credentials come from the AWS_* variables)."""

    url: str
    path: str | None = None
    bucket: str | None = None
    prefix: str = ""

    @property
    def kind(self) -> Literal["local", "s3"]:
        return "local" if self.path is not None else "s3"


def storage_location(url: str) -> StorageLocation:
    """Read CHUTE_STORAGE_URL: a folder path, a `file://` URL, or `s3://bucket/prefix`."""
    if url.startswith("s3://"):
        bucket, prefix = split_s3_uri(url)
        if not _BUCKET.fullmatch(bucket):
            raise ValueError("s3:// must be followed by a bucket name: s3://bucket/prefix")
        return StorageLocation(url=url, bucket=bucket, prefix=prefix.strip("/"))
    if url.startswith("file://"):
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ValueError("a file:// URL must name a local folder: file:///path/to/folder")
        return StorageLocation(url=url, path=unquote(parts.path))
    if "://" in url:
        raise ValueError("must be a folder, a file:// URL or s3://bucket/prefix")
    if not url.strip():
        raise ValueError("must not be empty")
    return StorageLocation(url=url, path=url)


class Settings(BaseSettings):
    """Every setting of the service, with its default; docs/operations.md explains each."""

    # hide_input_in_errors: a refused value may be an API key or a URL with a password;
    # errors name the setting and what is wrong, never the value.
    model_config = SettingsConfigDict(
        env_prefix="CHUTE_", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite+aiosqlite:///./var/chute.db"
    # Unset: CHUTE_STORAGE_DIR, the older setting (a folder only), else /tmp/pipeline.
    storage_url: str | None = None
    storage_dir: str | None = None
    max_upload_bytes: Annotated[int, Field(ge=1)] = 100 * MIB
    max_files_per_upload: Annotated[int, Field(ge=1)] = 20
    # NoDecode: the variable is a plain comma-separated list, not the JSON array
    # pydantic-settings would otherwise expect for a tuple.
    allowed_types: Annotated[tuple[str, ...], NoDecode] = ()
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    retry_base_seconds: Annotated[float, Field(gt=0)] = 1
    retry_cap_seconds: Annotated[float, Field(gt=0)] = 600
    rescue_interval_seconds: Annotated[float, Field(gt=0)] = 15
    sweep_interval_seconds: Annotated[float, Field(gt=0)] = 3600
    schedule_interval_seconds: Annotated[float, Field(gt=0)] = 1
    stream_poll_seconds: Annotated[float, Field(gt=0)] = 0.2
    stream_keepalive_seconds: Annotated[float, Field(gt=0)] = 15
    stream_buffer: Annotated[int, Field(ge=10, le=100_000)] = 1000
    orphan_grace_seconds: Annotated[float, Field(ge=0)] = 3600
    worker_slots: Annotated[int, Field(ge=1, le=100)] = 4
    worker_lease_seconds: Annotated[int, Field(ge=5, le=3600)] = 60
    worker_grace_seconds: Annotated[float, Field(ge=0)] = 30
    worker_poll_seconds: Annotated[float, Field(gt=0)] = 1
    fetch_timeout_seconds: Annotated[float, Field(gt=0)] = 30
    fetch_max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    fetch_allow_private: bool = False
    webhook_retry_base_seconds: Annotated[float, Field(gt=0)] = 5
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10
    webhook_interval_seconds: Annotated[float, Field(gt=0)] = 1
    webhook_retention_seconds: Annotated[float, Field(gt=0)] = 7 * 86400
    # Comma-separated keys or sha256:<hex> digests; SecretStr keeps them out of reprs.
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    # Signs the console's session cookies; unset: derived from the API keys.
    session_secret: SecretStr | None = None
    max_header_bytes: Annotated[int, Field(ge=1 * KIB, le=1024 * KIB)] = 16 * KIB
    keep_alive_seconds: Annotated[int, Field(ge=1)] = 5
    limit_concurrency: Annotated[int | None, Field(ge=1)] = None
    count_cap: Annotated[int, Field(ge=1)] = DEFAULT_COUNT_CAP
    metrics: bool = True  # GET /metrics and the counts behind it; off: neither

    @field_validator("allowed_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if isinstance(value, list | tuple):
            return tuple(check_mime_pattern(str(item)) for item in value)
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str | SecretStr):
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            value = split_entries(text)
        if isinstance(value, list | tuple):
            entries = [v.get_secret_value() if isinstance(v, SecretStr) else str(v) for v in value]
            for position, entry in enumerate(entries, start=1):
                entry_digest(entry, position)  # a bad entry stops start-up, unquoted
            return tuple(SecretStr(entry) for entry in entries)
        return value

    @field_validator("storage_url")
    @classmethod
    def _check_storage_url(cls, value: str | None) -> str | None:
        if value is not None:
            storage_location(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelNamesMapping().get(level), int):
            raise ValueError(f"unknown log level {value!r}")
        return level

    @property
    def storage(self) -> StorageLocation:
        """Where content is kept: CHUTE_STORAGE_URL, else CHUTE_STORAGE_DIR, else the default."""
        if self.storage_url is not None:
            return storage_location(self.storage_url)
        folder = self.storage_dir or DEFAULT_STORAGE
        return StorageLocation(url=folder, path=folder)

    @property
    def is_sqlite(self) -> bool:
        """True when the database is an embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def setting_errors(exc: ValidationError) -> list[str]:
    """One line per refused setting, named as the user sets it (`CHUTE_API_KEYS: ...`),
    never by its field name and never with its value (it may be a key or a password)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]) if error["loc"] else ""
        name = f"CHUTE_{field.upper()}" if field in Settings.model_fields else field
        lines.append(f"{name}: {error['msg']}")
    return lines
