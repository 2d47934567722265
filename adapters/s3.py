"""The connection to an S3-compatible object store that storage and ingest share.

Its settings are the standard ones that boto3, the AWS CLI and most S3 clients read, so
that one environment serves them all: `AWS_ENDPOINT_URL` (for S3-compatible servers),
`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (default
`us-east-1`) and `AWS_ALLOW_HTTP` (`true` for an `http://` endpoint). Addressing is
path-style (`{endpoint}/{bucket}/{key}`), which every S3-compatible server takes.

The client is obstore (Rust's object_store): async, streaming multipart puts and ranged
gets, measured with the lowest memory and CPU per put of the clients tried. Its traps,
handled where chute uses it: a missing object is `FileNotFoundError` (obstore's
`NotFoundError`), but a list in a missing bucket is a `GenericError` naming `NoSuchBucket`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

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
