"""`UrlFetcher`: downloads the content of url jobs, streamed, and safe against SSRF.

Every hop (the URL and each redirect) is checked before anything is sent: the scheme
must be http or https, and the host is resolved here and refused when any of its
addresses is not public (see `addresses`). The request then goes to the address that
was checked (no second lookup that DNS rebinding could answer differently), with the
original `Host` header and, for https, the original name as SNI, so that the server's
certificate is still verified against the name. One deadline covers the whole fetch,
body included, and the body is cut past `max_bytes`.

Every failure is a `JobFailed`: retryable for timeouts, connection errors, 5xx, 408 and
429; not retryable for other 4xx, refused addresses or schemes, and oversized bodies.
"""

from __future__ import annotations

import asyncio
import email.message
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import cast
from urllib.parse import unquote

import httpx
from chute.adapters.ingest.addresses import Resolver, parse_literal, refusal, resolve
from chute.application.worker import JobFailed
from chute.domain.validation import drop_unstorable

_PORTS = {"http": 80, "https": 443}
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_4XX = frozenset({408, 429})  # the server asks to be tried again later
_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "chute"}


@dataclass(frozen=True)
class FetchedResponse:
    """A response being received: its name and type, and its body as it arrives."""

    url: str  # after redirects
    filename: str | None  # from Content-Disposition, else the URL's last path segment
    content_type: str | None  # the media type, lower-cased, without parameters
    chunks: AsyncIterator[bytes]
    size: int | None = None  # the declared Content-Length, when there is one


class UrlFetcher:
    """Downloads http(s) URLs from public addresses (any address with `allow_private`)."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        max_redirects: int,
        max_bytes: int,
        allow_private: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        self._timeout, self._max_redirects = timeout_seconds, max_redirects
        self._max_bytes, self._allow_private = max_bytes, allow_private
        self._transport, self._resolve = transport, resolver

    @asynccontextmanager
    async def fetch(self, url: str) -> AsyncIterator[FetchedResponse]:
        """Request `url`; yield the response once its headers are in, closed on exit."""
        deadline = asyncio.get_running_loop().time() + self._timeout
        client = self._client()
        try:
            response, final = await self._follow(client, _parse(url), deadline)
            try:
                self._check(response, final)
                yield FetchedResponse(
                    url=str(final),
                    filename=_filename(response, final),
                    content_type=_media_type(response),
                    chunks=self._body(response, final, deadline),
                    size=_declared_size(response),
                )
            finally:
                await response.aclose()
        finally:
            if self._transport is None:  # an injected transport belongs to its giver
                await client.aclose()

    # -- the request, hop by hop ----------------------------------------------------------

    async def _follow(
        self, client: httpx.AsyncClient, url: httpx.URL, deadline: float
    ) -> tuple[httpx.Response, httpx.URL]:
        for _ in range(self._max_redirects + 1):
            response = await self._get(client, url, deadline)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or location is None:
                return response, url
            await response.aclose()
            url = _parse(location, base=url)
        raise JobFailed(f"more than {self._max_redirects} redirects from {url}", retryable=False)

    async def _get(
        self, client: httpx.AsyncClient, url: httpx.URL, deadline: float
    ) -> httpx.Response:
        if url.scheme not in _PORTS:
            raise JobFailed(f"refused {url}: only http and https URLs are fetched", retryable=False)
        host = url.raw_host.decode("ascii")
        if not host:
            raise JobFailed(f"refused {url}: it names no host", retryable=False)
        with _errors(url):
            async with asyncio.timeout_at(deadline):
                addresses = await self._addresses(host, url.port or _PORTS[url.scheme])
                return await self._send(client, url, host, addresses)

    async def _addresses(self, host: str, port: int) -> list[str]:
        literal = parse_literal(host)
        found = [str(literal)] if literal else await self._resolve(host, port)
        if not found:
            raise JobFailed(f"{host} resolves to no address", retryable=True)
        for address in found:
            parsed = parse_literal(address)
            if parsed is None:
                raise JobFailed(f"{host} resolves to {address!r}, not an address", retryable=False)
            reason = refusal(parsed)
            if reason and not self._allow_private:
                raise JobFailed(
                    f"refused {host}: its address {address} is not public ({reason}); "
                    "chute fetches from private addresses only with "
                    "CHUTE_FETCH_ALLOW_PRIVATE=true",
                    retryable=False,
                )
        return found

    async def _send(
        self, client: httpx.AsyncClient, url: httpx.URL, host: str, addresses: list[str]
    ) -> httpx.Response:
        error: httpx.ConnectError | None = None
        for address in addresses:  # every one was checked: try them in turn
            request = client.build_request(
                "GET",
                url.copy_with(host=address),
                headers={**_HEADERS, "Host": url.netloc.decode("ascii")},
                extensions={"sni_hostname": host} if url.scheme == "https" else {},
            )
            try:
                return await client.send(request, stream=True)
            except httpx.ConnectError as e:
                error = e
        assert error is not None
        raise error

    # -- the response -------------------------------------------------------------------

    def _check(self, response: httpx.Response, url: httpx.URL) -> None:
        status = response.status_code
        if not 200 <= status < 300:
            retryable = status >= 500 or status in _RETRYABLE_4XX
            reason = response.reason_phrase or "no reason given"
            raise JobFailed(f"{url} answered {status} {reason}", retryable=retryable)
        declared = _declared_size(response)
        if declared is not None and declared > self._max_bytes:
            raise self._too_large(url)

    async def _body(
        self, response: httpx.Response, url: httpx.URL, deadline: float
    ) -> AsyncIterator[bytes]:
        received = 0
        stream = cast(AsyncGenerator[bytes, None], response.aiter_bytes())  # it is one
        try:
            while True:
                with _errors(url):
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(stream, None)
                if chunk is None:
                    return
                received += len(chunk)
                if received > self._max_bytes:
                    raise self._too_large(url)
                yield chunk
        finally:
            await stream.aclose()

    def _too_large(self, url: httpx.URL) -> JobFailed:
        return JobFailed(f"{url} is larger than {self._max_bytes} bytes", retryable=False)

    def _client(self) -> httpx.AsyncClient:
        # No kept-alive connections: one made for a name (SNI) must not serve another.
        transport = self._transport or httpx.AsyncHTTPTransport(
            verify=self._ssl_context, limits=httpx.Limits(max_keepalive_connections=0)
        )
        timeout = httpx.Timeout(self._timeout)
        return httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False)

    @cached_property
    def _ssl_context(self) -> ssl.SSLContext:
        return httpx.create_ssl_context()


@contextmanager
def _errors(url: httpx.URL) -> Iterator[None]:
    """Turn what the network raises into `JobFailed`."""
    try:
        yield
    except (TimeoutError, httpx.TimeoutException) as e:
        raise JobFailed(f"timed out fetching {url}", retryable=True) from e
    except socket.gaierror as e:
        # Retried like a refused connection: a name that does not resolve now (a DNS
        # server away, a record not yet published) often does a minute later, and the
        # job's max_attempts bounds the cost when it never will.
        raise JobFailed(f"cannot resolve {url.host}: {e.strerror}", retryable=True) from e
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
        raise JobFailed(f"refused {url}: {e}", retryable=False) from e
    except (httpx.TransportError, OSError) as e:
        raise JobFailed(f"could not fetch {url}: {e or type(e).__name__}", retryable=True) from e


def _parse(url: str, base: httpx.URL | None = None) -> httpx.URL:
    try:
        return base.join(url) if base else httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as e:
        raise JobFailed(f"not a valid URL: {url!r} ({e})", retryable=False) from e


def _filename(response: httpx.Response, url: httpx.URL) -> str | None:
    disposition = response.headers.get("content-disposition")
    if disposition:
        message = email.message.Message()
        message["content-disposition"] = disposition
        name = message.get_filename()  # also decodes RFC 2231's filename*=UTF-8''...
        if name:
            return drop_unstorable(str(name)) or None
    segment = url.raw_path.split(b"?", 1)[0].rsplit(b"/", 1)[-1]
    # A NUL (%00) or bytes that are not UTF-8 in the server's name are dropped: the
    # engine refuses such a name, and the job would fail for the server's quirk.
    return drop_unstorable(unquote(segment.decode("ascii"), errors="surrogateescape")) or None


def _declared_size(response: httpx.Response) -> int | None:
    declared = response.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value or None
