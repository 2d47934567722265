"""The upload client and its baselines: a multipart body streamed from a generator, and the
same bytes written straight to disk."""

from __future__ import annotations

import http.client
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.procs import Server
from tests import corpus

CHUNK = 1024 * 1024


def random_block() -> bytes:
    """1 MiB of random bytes, sent again and again: incompressible, and cheap to make."""
    return os.urandom(CHUNK)


def chunks(size: int, block: bytes) -> Iterator[bytes]:
    """`size` bytes as a stream of `block`s (the last one cut), never all at once."""
    sent = 0
    while sent < size:
        piece = block[: size - sent]
        sent += len(piece)
        yield piece


def small_pdf(size: int) -> bytes:
    """A real PDF, padded with comment lines after its end to exactly `size` bytes."""
    body = corpus.pdf()
    padding = size - len(body)
    lines = b"".join(b"%" + b"p" * 78 + b"\n" for _ in range(padding // 80))
    return body + lines + b"%" * (padding - len(lines))


def upload(
    server: Server,
    name: str,
    content: int | bytes,
    block: bytes = b"",
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, bytes]:
    """POST one file (`content` bytes, or `content` bytes of `block`s) as multipart."""
    boundary = "chute-bench-" + secrets.token_hex(8)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    parts = chunks(content, block) if isinstance(content, int) else iter(())
    size = content if isinstance(content, int) else len(content)
    client = conn or http.client.HTTPConnection("127.0.0.1", server.port, timeout=600)
    try:
        client.putrequest("POST", "/api/v1/upload")
        client.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        client.putheader("Content-Length", str(len(head) + size + len(tail)))
        client.endheaders()
        if isinstance(content, bytes):  # small: one send
            client.send(head + content + tail)
        else:
            for piece in _stream(head, parts, tail):
                client.send(piece)
        response = client.getresponse()
        answer = response.read()
    finally:
        if conn is None:
            client.close()
    if response.status != 201:
        raise RuntimeError(f"upload {name}: {response.status} {answer[:500]!r}")
    return response.status, answer


def _stream(head: bytes, parts: Iterator[bytes], tail: bytes) -> Iterator[bytes]:
    yield head
    yield from parts
    yield tail


def raw_write(path: Path, size: int, block: bytes) -> float:
    """Seconds to write `size` bytes of `block`s to `path` and fsync it; the file is removed."""
    started = time.perf_counter()
    with path.open("wb") as out:
        for piece in chunks(size, block):
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    seconds = time.perf_counter() - started
    path.unlink()
    return seconds


def concurrently(
    count: int,
    threads: int,
    work: Callable[[http.client.HTTPConnection | None, int], object],
    connect: Server | None,
) -> tuple[float, list[float]]:
    """Run `work(conn, n)` for n in range(count) on `threads` threads (each with its own
    keep-alive connection to `connect`, if given): (seconds, latencies in ms)."""
    numbers = iter(range(count))
    lock, latencies, failures = threading.Lock(), [], []

    def loop() -> None:
        conn = (
            http.client.HTTPConnection("127.0.0.1", connect.port, timeout=120) if connect else None
        )
        try:
            while True:
                with lock:
                    n = next(numbers, None)
                if n is None:
                    return
                started = time.perf_counter()
                work(conn, n)
                latencies.append((time.perf_counter() - started) * 1000)
        except Exception as e:
            failures.append(e)
        finally:
            if conn:
                conn.close()

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - started, latencies


class RssSampler:
    """The largest VmRSS of a server seen every 10 ms while the block runs."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak = server, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, self.server.memory_kib("VmRSS"))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()
