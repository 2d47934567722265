"""Unfinished multipart uploads: found and aborted, so that a process killed in the middle
of an upload leaves nothing behind in the bucket once the orphan sweep has run.

obstore aborts the uploads it knows of, but it offers no way to list those that a dead
process began. S3's own ListMultipartUploads and AbortMultipartUpload do, on AWS and on
every S3-compatible server; they are sent here as plain HTTP requests signed with AWS
Signature Version 4 (the bucket is addressed path-style, as `S3Connection` does).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx
from chute.adapters.s3 import S3Connection

log = logging.getLogger("chute.files")

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_PAGE = 1000  # uploads per list answer (S3's most)


@dataclass(frozen=True, slots=True)
class Upload:
    """A multipart upload begun and neither completed nor aborted."""

    key: str  # the object's whole key, prefix included
    upload_id: str
    initiated: datetime


class MultipartUploads:
    """The unfinished multipart uploads of keys under `prefix` in one bucket."""

    def __init__(self, connection: S3Connection, bucket: str, prefix: str = "") -> None:
        self.connection, self.bucket = connection, bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint = (
            connection.endpoint_url or f"https://s3.{connection.region}.amazonaws.com"
        ).rstrip("/")

    @property
    def can_sign(self) -> bool:
        """False without explicit keys (an instance role): the sweep then leaves
        unfinished uploads to the bucket's lifecycle rule."""
        return bool(self.connection.access_key_id and self.connection.secret_access_key)

    async def older_than(self, moment: datetime) -> list[Upload]:
        """Every unfinished upload under the prefix begun before `moment`."""
        found: list[Upload] = []
        markers = {"key-marker": "", "upload-id-marker": ""}
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                query = {"uploads": "", "prefix": self.prefix, "max-uploads": str(_PAGE)}
                query |= {k: v for k, v in markers.items() if v}
                answer = ET.fromstring(await self._send(client, "GET", f"/{self.bucket}", query))
                for node in answer.iter(f"{_NS}Upload"):
                    upload = _upload(node)
                    if upload.initiated < moment:
                        found.append(upload)
                if answer.findtext(f"{_NS}IsTruncated", "false") != "true":
                    return found
                markers = {
                    "key-marker": answer.findtext(f"{_NS}NextKeyMarker", ""),
                    "upload-id-marker": answer.findtext(f"{_NS}NextUploadIdMarker", ""),
                }

    async def abort(self, upload: Upload) -> None:
        """Abort `upload`: its parts are freed, and no object will ever come of it."""
        async with httpx.AsyncClient(timeout=30) as client:
            path = f"/{self.bucket}/{quote(upload.key, safe='/-_.~')}"
            await self._send(client, "DELETE", path, {"uploadId": upload.upload_id})

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, query: dict[str, str]
    ) -> bytes:
        # The query goes as it was signed: each name and value encoded the SigV4 way.
        url = f"{self.endpoint}{path}?{_query(query)}"
        headers = self._signed(method, path, query, datetime.now(UTC))
        response = await client.request(method, url, headers=headers)
        if response.status_code >= 300:
            raise httpx.HTTPStatusError(
                f"{method} {path} answered {response.status_code}",
                request=response.request,
                response=response,
            )
        return response.content

    def _signed(
        self, method: str, path: str, query: dict[str, str], now: datetime
    ) -> dict[str, str]:
        """The headers of a request with an empty body, signed with SigV4."""
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers = {
            "host": urlsplit(self.endpoint).netloc,
            "x-amz-content-sha256": _EMPTY_SHA256,
            "x-amz-date": stamp,
        }
        if self.connection.session_token:
            headers["x-amz-security-token"] = self.connection.session_token
        names = ";".join(sorted(headers))
        canonical = "\n".join(
            [method, path, _query(query), *(f"{k}:{headers[k]}" for k in sorted(headers)),
             "", names, _EMPTY_SHA256]
        )  # fmt: skip
        region = self.connection.region
        scope = f"{day}/{region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = f"AWS4{self.connection.secret_access_key}".encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.connection.access_key_id}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return headers


def _upload(node: ET.Element) -> Upload:
    initiated = node.findtext(f"{_NS}Initiated", "")
    return Upload(
        key=node.findtext(f"{_NS}Key", ""),
        upload_id=node.findtext(f"{_NS}UploadId", ""),
        initiated=datetime.fromisoformat(initiated.replace("Z", "+00:00")),
    )


def _query(query: dict[str, str]) -> str:
    """SigV4's canonical query string: sorted, every name and value encoded (RFC 3986)."""
    return "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(query.items()))


def _q(text: str) -> str:
    return quote(text, safe="-_.~")
