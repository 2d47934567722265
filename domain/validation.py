"""Rules on the values a job is made of, shared by every entrypoint."""

from __future__ import annotations

import functools
import json
import math
import re
import zoneinfo
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from chute.domain.errors import InvalidValue
from chute.domain.media_types import canonical
from chute.domain.values import SourceType

MAX_URI_LENGTH = 2048
MAX_METADATA_BYTES = 16 * 1024
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 20
MAX_JSON_DEPTH = 64
MAX_FILE_SIZE = 2**63 - 1  # a signed 64-bit integer, the widest column of both databases

_TOKEN = r"[A-Za-z0-9!#$&^_.+-]{1,127}"
# In the syntax that both Python and JSON Schema (ECMA-262) read, so that the HTTP API
# can show clients the very patterns that are checked. Checked with `fullmatch`: `$`
# alone would let a trailing newline through.
MIME_TYPE_PATTERN = rf"^{_TOKEN}/{_TOKEN}$"
MEDIA_RANGE_PATTERN = rf"^{_TOKEN}/(\*|{_TOKEN})$"
_MIME = re.compile(MIME_TYPE_PATTERN)
_MIME_PATTERN = re.compile(MEDIA_RANGE_PATTERN)
# S3 bucket naming rules: 3-63 chars of lowercase letters, digits, dots and hyphens,
# beginning and ending with a letter or digit, no "..", not an IP address.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# What no database of chute can store: NUL (PostgreSQL's text and jsonb refuse it) and
# surrogate code points, which no UTF-8 encoder takes. In a Python string every one of
# them is unpaired: JSON's "\ud83d\ude00" decodes to one code point, "\ud800" to a lone
# surrogate.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = (
    "must not contain the NUL character (U+0000) or an unpaired surrogate (U+D800 to U+DFFF)"
)
# The common case, checked by one match: an http(s) URL whose host is letters, digits,
# dots and hyphens, with a port of at most four digits and no "@" anywhere. `_check_url`
# would accept every such URL; anything else goes through it.
_PLAIN_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,4})?(?:[/?#][^@]*)?$")


def storable(text: str) -> bool:
    """Whether every database can store `text`: it holds no NUL and no surrogate."""
    return _UNSTORABLE.search(text) is None


def drop_unstorable(text: str) -> str:
    """`text` without the characters no database stores: for text chute writes itself
    from what others sent (an error's message, a name a remote server gave)."""
    return _UNSTORABLE.sub("", text)


def check_text(field: str, value: str) -> str:
    """Return `value` unless it holds text no database stores (see `storable`), the one
    rule on every string a client or a worker sends."""
    if _UNSTORABLE.search(value):
        raise InvalidValue(field, UNSTORABLE_TEXT)
    return value


def check_source_uri(source_type: SourceType, uri: str) -> str:
    """Return `uri` when it is a valid reference for `source_type`, else raise."""
    check_text("source_uri", uri)
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidValue("source_uri", f"at most {MAX_URI_LENGTH} characters")
    if _CONTROL.search(uri):
        raise InvalidValue("source_uri", "must not contain spaces or control characters")
    if source_type is SourceType.URL:
        return uri if _PLAIN_URL.match(uri) else _check_url(uri)
    if source_type is SourceType.S3:
        return _check_s3(uri)
    raise InvalidValue("source_type", "upload jobs are made only by uploading content")


def _check_url(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as e:
        raise InvalidValue("source_uri", f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidValue("source_uri", "a url source must be an absolute http or https URL")
    if not parts.hostname:
        raise InvalidValue("source_uri", "a url source must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidValue("source_uri", "a url source must not carry a user or password")
    return uri


def _check_s3(uri: str) -> str:
    if not uri.startswith("s3://"):
        raise InvalidValue("source_uri", "an s3 source must look like s3://bucket/key")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not key:
        raise InvalidValue("source_uri", "an s3 source must name a key: s3://bucket/key")
    if not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise InvalidValue("source_uri", f"{bucket!r} is not a valid S3 bucket name")
    return uri


def check_mime_type(value: str) -> str:
    """Return a `type/subtype` media type under chute's name for its format (lower-cased),
    else raise."""
    if not _MIME.fullmatch(value):
        raise InvalidValue("mime_type", "must be a media type like type/subtype")
    return canonical(value)


def check_mime_pattern(value: str) -> str:
    """Return a media type (under chute's name for its format) or a `type/*` pattern,
    lower-cased, else raise."""
    if not _MIME_PATTERN.fullmatch(value):
        raise InvalidValue("mime_type", "must be a media type (type/subtype) or type/*")
    return value.lower() if value.endswith("/*") else canonical(value)


def mime_matches(mime_type: str | None, pattern: str) -> bool:
    """True when `mime_type` is `pattern`, or falls under a `type/*` pattern."""
    if mime_type is None:
        return False
    if pattern.endswith("/*"):
        return mime_type.startswith(pattern[:-1])
    return mime_type == pattern


def check_metadata(value: Any) -> dict[str, Any]:
    """Return `value` when it is a JSON object of at most 16 KiB, else raise."""
    return _check_json_object("metadata", value, MAX_METADATA_BYTES)


def _check_json_object(field: str, value: Any, limit: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidValue(field, "must be a JSON object")
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as e:
        _check_plain_json(field, value)  # its errors first, as when it ran first
        raise InvalidValue(field, f"must be JSON-serialisable: {e}") from None
    # The walk can refuse only a non-finite number (written NaN or Infinity) or nesting
    # past MAX_JSON_DEPTH (more brackets than that): without either, it is skipped.
    if "NaN" in text or "Infinity" in text or text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        _check_plain_json(field, value)
    # Written without ensure_ascii, the text holds a surrogate as it is, and NUL as the
    # escape \u0000 (which a string holding a backslash and "u0000" also shows): only
    # then are the keys and strings walked.
    if "\\u0000" in text or not storable(text):
        _check_json_text(field, value)
    size = len(text.encode())
    if size > limit:
        raise InvalidValue(field, f"at most {limit} bytes as compact JSON")
    return value


def _check_plain_json(field: str, value: Any) -> None:
    """Refuse what JSON cannot carry back: NaN or Infinity (which Python's parser takes)
    and nesting deeper than `MAX_JSON_DEPTH` (which encoders and stores cannot take).
    Iterative, so that the depth itself cannot overflow the check."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidValue(field, "NaN and Infinity are not JSON numbers")
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidValue(field, f"at most {MAX_JSON_DEPTH} levels of nesting")
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )


def _check_json_text(field: str, value: Any) -> None:
    """Refuse a key or a string, at any depth, that holds text no database stores; the
    message says where (the keys on the way there are storable, so they can be shown)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str) and not storable(item):
            raise InvalidValue(field, f"{UNSTORABLE_TEXT}: the string at {_at(field, path)}")
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and not storable(key):
                    raise InvalidValue(field, f"{UNSTORABLE_TEXT}: a key of {_at(field, path)}")
                stack.append(((*path, key), child))
        elif isinstance(item, list):
            stack.extend(((*path, index), child) for index, child in enumerate(item))


def _at(field: str, path: tuple[str | int, ...]) -> str:
    """`metadata["a"][0]`: where a value is in a field, its keys in ASCII-safe JSON."""
    return field + "".join(f"[{json.dumps(part)}]" for part in path)


def check_max_attempts(value: int) -> int:
    """Return `value` when it lies in 1..20, else raise."""
    if not MIN_ATTEMPTS <= value <= MAX_ATTEMPTS:
        raise InvalidValue("max_attempts", f"must be {MIN_ATTEMPTS} to {MAX_ATTEMPTS}")
    return value


def check_file_size(value: int | None) -> int | None:
    """Return `value` when it is absent or 0 to 2^63 - 1 (what databases store), else raise."""
    if value is not None and not 0 <= value <= MAX_FILE_SIZE:
        raise InvalidValue("file_size", f"must be 0 to {MAX_FILE_SIZE}")
    return value


MAX_WORKER_ID = 255
CLAIM_LIMIT = (1, 100)
LEASE_SECONDS = (5, 3600)
MAX_ERROR_BYTES = 8192
MAX_RESULT_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY = 255


def check_worker_id(value: str) -> str:
    """Return `value` when it is 1 to 255 storable characters, else raise."""
    if not 1 <= len(value) <= MAX_WORKER_ID:
        raise InvalidValue("worker_id", f"must be 1 to {MAX_WORKER_ID} characters")
    return check_text("worker_id", value)


def check_idempotency_key(value: str) -> str:
    """Return `value` when it is 1 to 255 storable characters, else raise."""
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise InvalidValue("idempotency_key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return check_text("idempotency_key", value)


def check_claim_limit(value: int) -> int:
    low, high = CLAIM_LIMIT
    if not low <= value <= high:
        raise InvalidValue("limit", f"must be {low} to {high}")
    return value


def check_lease_seconds(value: int) -> int:
    low, high = LEASE_SECONDS
    if not low <= value <= high:
        raise InvalidValue("lease_seconds", f"must be {low} to {high}")
    return value


def check_progress(value: int) -> int:
    if not 0 <= value <= 100:
        raise InvalidValue("progress", "must be 0 to 100")
    return value


def check_error(value: str) -> str:
    check_text("error", value)
    if len(value.encode("utf-8")) > MAX_ERROR_BYTES:
        raise InvalidValue("error", f"at most {MAX_ERROR_BYTES} bytes of UTF-8")
    return value


def check_result(value: Any) -> dict[str, Any]:
    """Return `value` when it is a JSON object of at most 1 MiB, else raise."""
    return _check_json_object("result", value, MAX_RESULT_BYTES)


MAX_QUEUE_NAME = 64
QUEUE_NAME_PATTERN = r"^[a-z0-9_.-]{1,64}$"
_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)
CONCURRENCY_LIMIT = (1, 10_000)
MAX_RUN_AFTER = timedelta(days=366)


def check_queue_name(value: str, field: str = "queue") -> str:
    """Return `value` when it is 1 to 64 characters of a-z, 0-9, `_`, `.` and `-`, else raise."""
    if not _QUEUE_NAME.fullmatch(value):
        raise InvalidValue(field, "must be 1 to 64 characters of a-z, 0-9, _, . and -")
    return value


def check_concurrency_limit(value: int | None) -> int | None:
    low, high = CONCURRENCY_LIMIT
    if value is not None and not low <= value <= high:
        raise InvalidValue("concurrency_limit", f"must be {low} to {high}, or null")
    return value


def check_run_after(value: datetime | None, now: datetime) -> datetime | None:
    """Return `value` when it is absent or an aware time at most 366 days after `now`."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidValue("run_after", "must carry a UTC offset")
    if value - now > MAX_RUN_AFTER:
        raise InvalidValue("run_after", "at most 366 days ahead")
    return value


MAX_CRON_LENGTH = 255
CRON_FIELDS = 5


def check_cron_shape(value: str) -> str:
    """Return `value` when it has the five fields of a crontab line (minute, hour, day of
    month, month, day of week), else raise. Whether each field means anything is the
    calendar's to say."""
    if len(value) > MAX_CRON_LENGTH or _UNSTORABLE.search(value):
        raise InvalidValue("cron", f"must be at most {MAX_CRON_LENGTH} characters of text")
    if len(value.split()) != CRON_FIELDS:
        raise InvalidValue(
            "cron", "must have five fields: minute hour day-of-month month day-of-week"
        )
    return value


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_time_zone(value: str, field: str = "timezone") -> str:
    """Return `value` when it names an IANA time zone (`UTC`, `Europe/Berlin`), else raise.
    Only names from the time zone database count: never a path or a file's name."""
    if value != "UTC" and value not in _time_zones():
        raise InvalidValue(field, "must be an IANA time zone name, e.g. UTC or Europe/Berlin")
    return value
