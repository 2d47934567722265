"""The connection to an S3-compatible object store that storage and ingest share.

Its settings are the standard ones that boto3, the AWS CLI and most S3 clients read, so
that one environment serves them all: `AWS_ENDPOINT_URL` (for S3-compatible servers),
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default
`us-east-1`) and `AWS_ALLOW_HTTP` (`true` for an `http://` endpoint). Addressing is
path-style (`{endpoint}/{bucket}/{key}`), which every S3-compatible server takes.

The client is obstore (Rust's object_store): async, streaming multipart puts and ranged
gets, measured with the lowest memory and CPU per put of the clients tried. Its traps,
handled where chute uses it: a missing object is `FileNotFoundError` (obstore's
`NotFoundError`), and so is a get or put in a missing bucket, whereas a list in a missing
bucket is a `GenericError`; both name `NoSuchBucket` (`failure_of` tells them apart). And
a process that used it may abort at exit unless its runtime is given a moment (`settle`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError
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


class S3Failure(StrEnum):
    """What went wrong, in the terms an operator acts on."""

    MISSING_OBJECT = "missing-object"
    MISSING_BUCKET = "missing-bucket"
    REFUSED = "refused"  # the credentials, or what they may do
    UNREACHABLE = "unreachable"
    FAILED = "failed"  # the server answered with another error


# obstore's exceptions carry no structured code: their text quotes the server's XML
# answer (`<Code>NoSuchBucket</Code>`) or names the failure. Codes are matched with their
# tags, so that a key that merely contains such a word (a client's file name) cannot.
_MISSING_BUCKET = "<Code>NoSuchBucket</Code>"
_REFUSED = (
    *(f"<Code>{code}</Code>" for code in ("SignatureDoesNotMatch", "InvalidAccessKeyId",
                                          "AccessDenied", "InvalidToken", "ExpiredToken")),
    "status code: 401",
    "status code: 403",
)  # fmt: skip
_UNREACHABLE = ("error sending request", "timed out", "dns error", "Connection refused")


def failure_of(error: BaseException) -> S3Failure | None:
    """What an error raised by an obstore call means; None when it is not obstore's."""
    text = str(error)
    if _MISSING_BUCKET in text:
        return S3Failure.MISSING_BUCKET
    if isinstance(error, FileNotFoundError):
        return S3Failure.MISSING_OBJECT
    if isinstance(error, PermissionDeniedError | UnauthenticatedError):
        return S3Failure.REFUSED
    if not isinstance(error, BaseError):
        return None
    if any(code in text for code in _REFUSED):
        return S3Failure.REFUSED
    if any(words in text for words in _UNREACHABLE):
        return S3Failure.UNREACHABLE
    return S3Failure.FAILED


@dataclass
class _Runtime:
    used: bool = False


_runtime = _Runtime()
SETTLE_SECONDS = 0.1


def settle() -> None:
    """Let obstore's runtime threads leave the interpreter before the process exits.

    Each call's result comes back from one of those threads; when the interpreter starts
    finalizing while such a thread still has to take the GIL back to finish its call, the
    thread is made to exit from inside Rust frames, which aborts the process (SIGABRT,
    exit code 134, after work that all succeeded; a known PyO3/tokio issue). A short sleep
    without the GIL lets them finish first. Blocking: call it after the event loop ended.
    Nothing happens in a process that never made a client.
    """
    if _runtime.used:
        time.sleep(SETTLE_SECONDS)
