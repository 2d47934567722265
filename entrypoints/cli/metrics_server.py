"""`chute worker --metrics-port`: the worker's metrics over plain HTTP, on its own loop.

The same text as `chute serve`'s `GET /metrics` (the same `PrometheusMetrics.render`,
with `chute_jobs` counted from the database at each scrape), served by a few lines of
asyncio rather than a web framework or prometheus_client's thread: the live counts
are a use case of the engine, which lives on the worker's event loop.

It answers `GET /metrics` (200) and nothing else (404), one request per connection,
and reads at most `MAX_HEAD_BYTES` of a request for at most `READ_SECONDS`: a scraper
sends a few hundred bytes at once. It asks for no key: bind it (`--metrics-host`,
127.0.0.1 by default) where only the scraper reaches it.
"""

from __future__ import annotations

import asyncio
import logging

from chute.adapters.telemetry import PrometheusMetrics
from chute.adapters.telemetry.prometheus import CONTENT_TYPE
from chute.application import OrchestrationEngine
from chute.entrypoints.http.routes.metrics import live_counts

log = logging.getLogger("chute.worker")

MAX_HEAD_BYTES = 16 * 1024
READ_SECONDS = 10.0


async def serve_metrics(
    engine: OrchestrationEngine, metrics: PrometheusMetrics, host: str, port: int
) -> asyncio.Server:
    """A server of `metrics` on `host:port`, already listening; close it when done."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = head.partition(b" ")
            target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method == b"GET" and target == b"/metrics":
                body = metrics.render(live_counts(await engine.list_queues()))
                status, content_type = "200 OK", CONTENT_TYPE
            else:
                body, status, content_type = b"not found\n", "404 Not Found", "text/plain"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sent no whole request gets no answer
        except Exception:  # the database away, say: the scrape fails, the worker goes on
            log.warning("worker.metrics_failed", exc_info=True)
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=MAX_HEAD_BYTES)
    log.info("worker.metrics_serving", extra={"host": host, "port": port})
    return server
