"""Helpers of the webhook tests: a scripted sender for the engine's contract, and a real
HTTP receiver that checks signatures with the `standardwebhooks` package (an
implementation of the spec other than chute's)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chute.application import SendResult, WebhookSender
from standardwebhooks import Webhook as Verifier


@dataclass
class ScriptedSender(WebhookSender):
    """Answers each send with `answer` (delivered by default) after `delay` seconds, and
    keeps every call: (url, message id, body)."""

    answer: SendResult = field(default_factory=lambda: SendResult(True, status_code=200))
    delay: float = 0.0
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    def refusal(self, url: str) -> str | None:
        return None

    async def send(
        self, url: str, secret: str, message_id: str, body: bytes, *, timeout_seconds: float
    ) -> SendResult:
        self.sent.append((url, message_id, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answer


@dataclass
class Received:
    """One delivery the receiver accepted: its headers' id and its verified payload."""

    message_id: str
    payload: dict[str, Any]


class Receiver:
    """An HTTP server on 127.0.0.1 that verifies every POST's signature with the webhook's
    secret: 204 when it verifies (kept in `received`), 400 when not (counted in
    `rejected`). `status` answers every request with another status instead; `delay`
    waits before answering."""

    def __init__(self, port: int = 0) -> None:
        self.secret: str | None = None
        self.received: list[Received] = []
        self.rejected = 0
        self.requests = 0
        self.status: int | None = None
        self.delay = 0.0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver._handle(self, body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            self.requests += 1
            status, delay = self.status, self.delay
        if delay:
            time.sleep(delay)
        if status is None:
            try:
                assert self.secret is not None
                headers = {k.lower(): v for k, v in handler.headers.items()}
                payload = Verifier(self.secret).verify(body, headers)
            except Exception:
                with self._lock:
                    self.rejected += 1
                status = 400
            else:
                with self._lock:
                    self.received.append(Received(headers["webhook-id"], json.loads(body)))
                    assert payload["type"].startswith("job.")
                status = 204
        try:
            handler.send_response(status)
            handler.send_header("content-length", "0")
            handler.end_headers()
        except OSError:
            pass  # the sender gave up waiting

    def ids(self) -> list[str]:
        """The `webhook-id` of every delivery accepted, in order of arrival."""
        with self._lock:
            return [r.message_id for r in self.received]

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
