"""The HTTP/1.1 protocol `chute serve` runs: uvicorn's httptools one, its head bounded.

httptools (llhttp, in C) parses requests at about a third of the CPU of h11 (pure
Python): `bench/stack.py` measured chute's create rate 12 to 21% higher on it. But
uvicorn bounds nothing of a head that keeps coming on httptools (h11 bounds it with
`h11_max_incomplete_event_size`), so a client could make the server buffer an endless
header. This protocol restores h11's rule: a head still incomplete past the limit
(uvicorn's `h11_max_incomplete_event_size`, which `chute serve` sets to
CHUTE_MAX_HEADER_BYTES) is answered with a plain 400 and the connection closed. A
whole head over the limit reaches the app, whose `HeaderLimitMiddleware` answers 431.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bound on a head still coming."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._max_head = self.config.h11_max_incomplete_event_size or 16 * 1024
        # The bytes received since a request began, while its head is incomplete; None
        # between heads. Counted by whole reads: a read that ends one request and starts
        # the next counts whole for the next, so the bound is at most a read early.
        self._head_bytes: int | None = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._head_bytes = None
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_bytes is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self.send_400_response("Request head too large.")
