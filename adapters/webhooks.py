"""`HttpWebhookSender`: posts signed webhook deliveries over HTTP, on the fetcher's SSRF
rules.

A webhook's URL is checked twice: at registration (`refusal`: the scheme, and a literal
address that is not public), and at every send, where its host is resolved here and
refused when any address it resolves to is not public (DNS may point a public-looking
name at a private address, or change its answer later). The request then goes to the
address that was checked, with the original `Host` header (and, for https, the name as
SNI, so that the certificate is still verified against it). Redirects are never
followed: a 3xx is a failed attempt. `allow_private` lifts the address rule (for a
receiver on the same machine or network: CHUTE_FETCH_ALLOW_PRIVATE).

Signing follows the Standard Webhooks spec: `webhook-id` (the delivery's id, the same
on every retry), `webhook-timestamp` (Unix seconds of this attempt) and
`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from functools import cached_property

import httpx
from chute.adapters.ingest.addresses import Resolver, parse_literal, refusal, resolve
from chute.application.ports import WebhookSender
from chute.application.webhooks import SendResult
from chute.domain.webhooks import signature

_PORTS = {"http": 80, "https": 443}


class _Refused(Exception):
    """The URL's host is no place to send to; the message says why."""


class HttpWebhookSender(WebhookSender):
    """Posts deliveries with httpx: public addresses only unless `allow_private`."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver = resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._allow_private, self._resolve, self._transport = allow_private, resolver, transport
        self._clients: dict[str, httpx.AsyncClient] = {}

    def refusal(self, url: str) -> str | None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError) as e:
            return f"not a valid URL: {e}"
        if parsed.scheme not in _PORTS:
            return "must be an absolute http or https URL"
        host = parsed.host
        if not host:
            return "must name a host"
        literal = parse_literal(host)
        reason = refusal(literal) if literal is not None else None
        if reason and not self._allow_private:
            return (
                f"its address {literal} is not public ({reason}); chute sends to private "
                "addresses only with CHUTE_FETCH_ALLOW_PRIVATE=true"
            )
        return None

    async def send(
        self, url: str, secret: str, message_id: str, body: bytes, *, timeout_seconds: float
    ) -> SendResult:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "chute-webhooks",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(secret, message_id, timestamp, body),
        }
        try:
            async with asyncio.timeout(timeout_seconds):
                response = await self._post(httpx.URL(url), headers, body, timeout_seconds)
        except _Refused as e:
            return SendResult(False, error=f"refused: {e}")
        except (TimeoutError, httpx.TimeoutException):
            return SendResult(False, error=f"timed out after {timeout_seconds:g} s")
        except socket.gaierror as e:
            return SendResult(False, error=f"cannot resolve the host: {e.strerror}")
        except (httpx.HTTPError, OSError, ValueError) as e:
            return SendResult(False, error=f"could not send: {type(e).__name__}: {e}"[:500])
        status = response.status_code
        if 200 <= status < 300:
            return SendResult(True, status_code=status)
        note = " (redirects are not followed)" if 300 <= status < 400 else ""
        return SendResult(False, status_code=status, error=f"answered {status}{note}")

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    async def _post(
        self, url: httpx.URL, headers: dict[str, str], body: bytes, timeout_seconds: float
    ) -> httpx.Response:
        if url.scheme not in _PORTS or not url.host:
            raise _Refused(f"{url.scheme}: URLs are not sent to")
        host = url.host
        addresses = await self._addresses(host, url.port or _PORTS[url.scheme])
        client = self._client(url.scheme, timeout_seconds)
        error: httpx.ConnectError | None = None
        for address in addresses:  # every one was checked: try them in turn
            request = client.build_request(
                "POST",
                url.copy_with(host=address),
                headers={**headers, "host": url.netloc.decode("ascii")},
                content=body,
                extensions={"sni_hostname": host} if url.scheme == "https" else {},
            )
            try:
                response = await client.send(request)
            except httpx.ConnectError as e:
                error = e
                continue
            await response.aclose()
            return response
        assert error is not None
        raise error

    async def _addresses(self, host: str, port: int) -> list[str]:
        literal = parse_literal(host)
        found = [str(literal)] if literal else await self._resolve(host, port)
        if not found:
            raise _Refused(f"{host} resolves to no address")
        for address in found:
            parsed = parse_literal(address)
            if parsed is None:
                raise _Refused(f"{host} resolves to {address!r}, not an address")
            reason = refusal(parsed)
            if reason and not self._allow_private:
                raise _Refused(
                    f"{host} resolves to {address}, which is not public ({reason}); chute "
                    "sends to private addresses only with CHUTE_FETCH_ALLOW_PRIVATE=true"
                )
        return found

    def _client(self, scheme: str, timeout_seconds: float) -> httpx.AsyncClient:
        client = self._clients.get(scheme)
        if client is None:
            # Kept-alive connections for http only: an https one was made for one name
            # (SNI) and must not serve another that resolves to the same address.
            keepalive = None if scheme == "http" else 0
            transport = self._transport or httpx.AsyncHTTPTransport(
                verify=self._ssl_context,
                limits=httpx.Limits(max_keepalive_connections=keepalive),
            )
            client = httpx.AsyncClient(
                transport=transport,
                timeout=httpx.Timeout(timeout_seconds),
                trust_env=False,
                follow_redirects=False,
            )
            self._clients[scheme] = client
        return client

    @cached_property
    def _ssl_context(self) -> ssl.SSLContext:
        return httpx.create_ssl_context()
