"""The connection to an S3-compatible object store that storage and ingest share.

Its settings are the standard ones that boto3, the AWS CLI and most S3 clients read, so
that one environment serves them all: `AWS_ENDPOINT_URL` (for S3-compatible servers),
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default
`us-east-1`) and `AWS_ALLOW_HTTP` (`true` for an `http://` endpoint). Addressing is
path-style (`{endpoint}/{bucket}/{key}`), which every S3-compatible server takes.

The client is obstore (Rust's object_store): async, streaming multipart puts and ranged
gets, measured with the lowest memory and CPU per put of the clients tried. Its traps,
handled where chute uses it: a missing object is `FileNotFoundError` (obstore's
`NotFoundError`), but a list in a missing bucket is a `GenericError` naming `NoSuchBucket`;
its messages run to a page of Rust debug output (`S3Failure.of` keeps what a user needs);
and a process that used it must let its runtime settle before it exits (`settle`).
"""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

DEFAULT_REGION = "us-east-1"
TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, kw_only=True)
class S3Connection:
    """Where the object store is and how to sign in. Secrets stay out of its repr."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = DEFAULT_REGION
    allow_http: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Connection:
        """The connection the standard `AWS_*` variables describe."""
        env = os.environ if env is None else env
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            session_token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
            allow_http=env.get("AWS_ALLOW_HTTP", "").strip().lower() in TRUE,
        )

    @property
    def endpoint(self) -> str:
        """Where requests go, for messages: the endpoint URL, or AWS in the region."""
        return self.endpoint_url or f"AWS S3 ({self.region})"

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values no message may show."""
        return tuple(s for s in (self.secret_access_key, self.session_token) if s)

    def bucket(self, name: str, prefix: str | None = None) -> S3Store:
        """A client of bucket `name`, every key under `prefix` when given."""
        config: S3Config = {"region": self.region, "virtual_hosted_style_request": False}
        if self.endpoint_url:
            config["endpoint"] = self.endpoint_url
        if self.access_key_id:
            config["access_key_id"] = self.access_key_id
        if self.secret_access_key:
            config["secret_access_key"] = self.secret_access_key
        if self.session_token:
            config["session_token"] = self.session_token
        client: ClientConfig = {
            "allow_http": self.allow_http,
            "connect_timeout": "5s",
            "timeout": "60s",
        }
        # A few quick retries: a server that is away answers 503 at once rather than
        # after obstore's default of 10 retries over three minutes.
        retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
        _runtime.used = True
        return S3Store(
            name,
            prefix=prefix or None,
            config=config,
            client_options=client,
            retry_config=retry,
        )


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/parts` as `("bucket", "key/parts")`; the key may be empty."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


# -- errors ------------------------------------------------------------------------------

_RETRYABLE_4XX = frozenset({408, 429})
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket"})
_REFUSED_CODES = frozenset(
    {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken"}
)
_STATUS = re.compile(r"status code: (\d{3})|\bstatus: (\d{3})")
_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_MESSAGE = re.compile(r"<Message>([^<]{1,500})</Message>")
_OS_MESSAGE = re.compile(r'message: "([^"]{1,200})"')
_HTTP_ERROR = re.compile(r"HTTP error: ([^\n]{1,200})")
_METADATA_SERVICE = "169.254.169.254"  # where obstore looks for credentials last
_GENERIC = "Generic S3 error: "


@dataclass(frozen=True, kw_only=True)
class S3Failure:
    """What went wrong in an S3 call, in a user's terms, from obstore's exception."""

    # "missing", "refused", "no-credentials", "bad-key", "http-refused", "status", "network"
    kind: str
    retryable: bool  # whether the same call may succeed later
    status: int | None = None  # the HTTP status S3 answered, if it answered
    code: str | None = None  # S3's error code: NoSuchKey, AccessDenied, SlowDown, ...
    message: str | None = None  # S3's message, or what the network said

    @property
    def no_bucket(self) -> bool:
        return self.code == "NoSuchBucket"

    @property
    def said(self) -> str:
        """What the server or the network said, in one short phrase."""
        parts = [p for p in (self.code, self.message) if p]
        if parts:
            return ": ".join(parts)
        return f"HTTP {self.status}" if self.status else "no reason given"

    @classmethod
    def of(cls, error: Exception, secrets: Iterable[str] = ()) -> S3Failure:
        """Describe `error`, raised by an obstore call; `secrets` are blanked out of it."""
        text = str(error)
        for secret in secrets:
            text = text.replace(secret, "***")
        status = _status(text)
        code, message = _first(_CODE, text), _first(_MESSAGE, text)
        if isinstance(error, FileNotFoundError):
            return cls(kind="missing", retryable=False, status=status, code=code, message=message)
        if isinstance(error, PermissionDeniedError | UnauthenticatedError):
            return cls(kind="refused", retryable=False, status=status, code=code, message=message)
        if isinstance(error, ValueError):  # obstore refused the key before any request
            return cls(kind="bad-key", retryable=False, message=_summary(text))
        if _METADATA_SERVICE in text:  # no keys are set, and no instance role gave any
            return cls(kind="no-credentials", retryable=False, message=_summary(text))
        if "BadScheme" in text:  # an http:// endpoint without AWS_ALLOW_HTTP
            return cls(kind="http-refused", retryable=False, message=_summary(text))
        # A list or a delete wraps the same answers in a GenericError: read S3's own code.
        if code in _MISSING_CODES:
            return cls(kind="missing", retryable=False, status=status, code=code, message=message)
        if code in _REFUSED_CODES or status in (401, 403):
            return cls(kind="refused", retryable=False, status=status, code=code, message=message)
        if status is not None:
            retryable = status >= 500 or status in _RETRYABLE_4XX
            return cls(
                kind="status", retryable=retryable, status=status, code=code, message=message
            )
        # No answer: the server is away or slow. Retried, as max_attempts bounds the cost.
        return cls(kind="network", retryable=True, message=_network_reason(text))


def _status(text: str) -> int | None:
    found = _STATUS.search(text)
    return int(found.group(1) or found.group(2)) if found else None


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    found = pattern.search(text)
    return html.unescape(found.group(1)).strip() if found else None


def _summary(text: str) -> str:
    """The first line of an obstore message, without the debug dump after it."""
    return text.split("\n", 1)[0].strip().removeprefix(_GENERIC)[:300]


def _network_reason(text: str) -> str:
    lowered = text.lower()
    if "timed out" in lowered or "timedout" in lowered:
        return "timed out"
    for pattern in (_OS_MESSAGE, _HTTP_ERROR):  # "Connection refused", "error sending request"
        found = _first(pattern, text)
        if found:
            return found
    return _summary(text)


# -- exit ---------------------------------------------------------------------------------


@dataclass
class _Runtime:
    used: bool = False


_runtime = _Runtime()
SETTLE_SECONDS = 0.2


def settle() -> None:
    """Let obstore's runtime threads leave the interpreter before the process exits.

    Each call's result comes back from one of those threads, which takes the GIL once
    more to finish; when the interpreter has begun to finalize by then, the thread is
    stopped inside Rust frames and the process aborts (SIGABRT, after work that all
    succeeded; a known PyO3/tokio issue). A short sleep without the GIL lets them finish.
    Blocking: call it after the event loop has ended (`chute`'s commands do). Nothing
    happens in a process that never made a client.
    """
    if _runtime.used:
        time.sleep(SETTLE_SECONDS)
