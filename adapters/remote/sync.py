"""`SyncRemoteEngine`: `RemoteEngine`'s methods, blocking, for scripts and the CLI.

Each call runs the async client's method on a private event loop in a thread of its
own, so that there is one implementation of every call (and one connection pool);
its async iterators become plain iterators, read an item at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar
from uuid import UUID

import httpx
from chute.adapters.remote.engine import RemoteEngine
from chute.domain import Job

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _blocking(
    method: Callable[Concatenate[RemoteEngine, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[SyncRemoteEngine, P], R]:
    def call(self: SyncRemoteEngine, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._run(method(self.engine, *args, **kwargs))

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


def _iterating(
    method: Callable[Concatenate[RemoteEngine, P], AsyncIterator[T]],
) -> Callable[Concatenate[SyncRemoteEngine, P], Iterator[T]]:
    def call(self: SyncRemoteEngine, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        return self._iterate(method(self.engine, *args, **kwargs))

    call.__name__, call.__doc__ = method.__name__, method.__doc__
    return call


class SyncRemoteEngine:
    """`RemoteEngine(url, api_key, timeout=..., transport=...)` with blocking methods:
    `with SyncRemoteEngine(url, key) as chute: chute.get_job(job_id)`, or `close()`."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chute-remote", daemon=True
        )
        self._thread.start()
        self.engine = RemoteEngine(url, api_key, timeout=timeout, transport=transport)

    def _run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        future: Future[R] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(anext(items))  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._run(_aclose(items))

    def close(self) -> None:
        """Close the connections and end the loop's thread."""
        if self._loop.is_closed():
            return
        self._run(self.engine.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        return self.engine.url

    def open_content(self, job_id: UUID) -> tuple[Job, Iterator[bytes]]:
        """`RemoteEngine.open_content`: the job, and its bytes as a plain iterator."""
        job, chunks = self._run(self.engine.open_content(job_id))
        return job, self._iterate(chunks)

    create_job = _blocking(RemoteEngine.create_job)
    create_jobs = _blocking(RemoteEngine.create_jobs)
    get_job = _blocking(RemoteEngine.get_job)
    wait_job = _blocking(RemoteEngine.wait_job)
    list_jobs = _blocking(RemoteEngine.list_jobs)
    iter_jobs = _iterating(RemoteEngine.iter_jobs)
    list_job_events = _blocking(RemoteEngine.list_job_events)
    cancel_job = _blocking(RemoteEngine.cancel_job)
    retry_job = _blocking(RemoteEngine.retry_job)
    cancel_jobs = _blocking(RemoteEngine.cancel_jobs)
    retry_jobs = _blocking(RemoteEngine.retry_jobs)
    list_queues = _blocking(RemoteEngine.list_queues)
    get_queue = _blocking(RemoteEngine.get_queue)
    update_queue = _blocking(RemoteEngine.update_queue)
    upload_file = _blocking(RemoteEngine.upload_file)
    stream = _iterating(RemoteEngine.stream)
    claim_jobs = _blocking(RemoteEngine.claim_jobs)
    heartbeat = _blocking(RemoteEngine.heartbeat)
    complete_job = _blocking(RemoteEngine.complete_job)
    complete_jobs = _blocking(RemoteEngine.complete_jobs)
    fail_job = _blocking(RemoteEngine.fail_job)
    release_job = _blocking(RemoteEngine.release_job)
    store_content = _blocking(RemoteEngine.store_content)
    redetect_content = _blocking(RemoteEngine.redetect_content)
    rescue_expired_leases = _blocking(RemoteEngine.rescue_expired_leases)


async def _aclose(items: AsyncIterator[Any]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
