"""Requests to a chute server: one pooled `httpx.AsyncClient`, the API key, and every
error answer raised as the engine's own error (`chute.adapters.remote.errors`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from chute.adapters.remote.errors import NO_CONTEXT, Context, Problem, error_of, unreachable

API = "/api/v1"


class Transport:
    """Sends requests to one chute server and answers their responses, or raises."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        context: Context = NO_CONTEXT,
        ok: tuple[int, ...] = (200,),
        **kwargs: Any,
    ) -> httpx.Response:
        """The response to one request under `/api/v1`, read whole; an error answer
        raises the engine's error, a request that got no answer `ServiceUnavailable`."""
        try:
            response = await self.client.request(method, API + path, **kwargs)
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
        await check(response, context, ok)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of one request (see `call`)."""
        return (await self.call(method, path, **kwargs)).json()

    async def open(self, method: str, path: str, context: Context) -> httpx.Response:
        """A response whose body is still to be read (`aiter_bytes`, then `aclose`)."""
        request = self.client.build_request(method, API + path)
        try:
            response = await self.client.send(request, stream=True)
            if response.status_code >= 300:
                await response.aread()
                await response.aclose()
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
        await check(response, context, (200,))
        return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        context: Context = NO_CONTEXT,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """A response whose body is read as it comes (see `call` for its errors)."""
        try:
            async with self.client.stream(
                method, API + path, headers=headers, **kwargs
            ) as response:
                if response.status_code >= 300:
                    await response.aread()
                await check(response, context, (200,))
                yield response
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e


async def check(response: httpx.Response, context: Context, ok: tuple[int, ...]) -> None:
    """Return if the response is one of `ok`, else raise the error its problem names."""
    if response.status_code in ok:
        return
    try:
        body = response.json()
    except ValueError:  # not JSON: a proxy's page, say
        body = {"detail": response.text[:500]}
    raise error_of(Problem.of(response.status_code, body), context)
