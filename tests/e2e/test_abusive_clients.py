"""Abusive clients against a real `chute serve` over loopback: slow connections, oversize
heads and bodies, refusals that must leave nothing on disk, and keys kept out of the log.

One server (API keys on, small upload limits) serves the whole module; raw asyncio
sockets send what no well-behaved client library would.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import corpus
from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

pytestmark = pytest.mark.slow

KEY = "chute_abusive-clients-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_FILE = 64 * 1024
MAX_FILES = 3
MAX_HEADER = 16 * 1024
KEEP_ALIVE = 2
BOUNDARY = "abusive-boundary-1234"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass
class Server:
    base_url: str
    port: int
    storage: Path
    log: Path
    chute: ChuteServer

    def stored(self) -> set[str]:
        """The storage folder's entries (one folder per stored file)."""
        return {p.name for p in self.storage.iterdir()} if self.storage.exists() else set()


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    root = tmp_path_factory.mktemp("abusive")
    storage, log = root / "storage", root / "server.log"
    env = chute_env(
        sqlite_url(root / "chute.db"),
        storage,
        api_keys=KEY,
        max_upload_bytes=str(MAX_FILE),
        max_files_per_upload=str(MAX_FILES),
        max_header_bytes=str(MAX_HEADER),
        keep_alive_seconds=str(KEEP_ALIVE),
    )
    async with ChuteServer(env, log) as process:
        yield Server(process.base_url, process.port, storage, log, process)


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10) as client:
        yield client


# -- raw HTTP --------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int | None  # None: the server closed or reset the connection without an answer
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering
    seconds: float


async def exchange(port: int, *pieces: bytes, pause: float = 0.2, wait: float = 3) -> Answer:
    """Send `pieces` (with `pause` between them), then read until the server closes or
    `wait` seconds pass."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received, closed = b"", False
    try:
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(pause)
            writer.write(piece)
            await writer.drain()
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                closed = True
                break
            received += chunk
    except (TimeoutError, ConnectionError):
        closed = closed or writer.transport.is_closing() or reader.at_eof()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return parse_answer(received, closed, time.monotonic() - started)


def parse_answer(raw: bytes, closed: bool, seconds: float) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head:
        return Answer(None, {}, b"", True, seconds)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, closed, seconds)


def request_head(method: str, path: str, *headers: str, auth: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if auth:
        lines.append(f"Authorization: Bearer {KEY}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def file_part(data: bytes, name: str = "file", filename: str = "f.bin") -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
    head = f"--{BOUNDARY}\r\n{disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
    return head.encode() + data + b"\r\n"


def field_part(name: str, value: bytes, extra_headers: str = "") -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"\r\n{extra_headers}\r\n'
    return f"--{BOUNDARY}\r\n{disposition}".encode() + value + b"\r\n"


def multipart(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def wait_for_empty_storage(server: Server, before: set[str], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while server.stored() - before and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert server.stored() - before == set(), "a refused upload left files behind"


def assert_problem_answer(answer: Answer, status: int, type_: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/problem+json"
    assert f'"type":"{type_}"'.encode() in answer.body
    assert answer.headers.get("x-request-id")


# -- slow clients ----------------------------------------------------------------------------


class SlowClients:
    """50 connections that stop half-way through their request line or headers, and 50
    uploads that send their headers, then one byte per second."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stalled: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.trickling: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.bytes_trickled = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, stalled: int = 50, trickling: int = 50) -> None:
        halves = [b"GET /api/v1/jo", b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"]
        for number in range(stalled):
            connection = await asyncio.open_connection("127.0.0.1", self.port)
            connection[1].write(halves[number % 2])
            self.stalled.append(connection)
        head = request_head("POST", "/api/v1/upload", f"Content-Type: {MULTIPART}",
                            "Content-Length: 100000")  # fmt: skip
        preamble = file_part(b"")[:-2]  # the file part's headers, then its content trickles
        for _ in range(trickling):
            connection = await asyncio.open_connection("127.0.0.1", self.port)
            connection[1].write(head + preamble)
            self.trickling.append(connection)
            self._tasks.append(asyncio.create_task(self._trickle(connection[1])))
        await asyncio.gather(*(writer.drain() for _, writer in self.stalled + self.trickling))

    async def _trickle(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(1)
            writer.write(b"x")
            await writer.drain()
            self.bytes_trickled += 1

    def still_open(self) -> int:
        """How many of the connections the server has neither answered nor closed."""
        return sum(
            not reader.at_eof() and not reader._buffer  # nothing received either
            for reader, _ in self.stalled + self.trickling
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, writer in self.stalled + self.trickling:
            writer.close()
        await asyncio.gather(
            *(writer.wait_closed() for _, writer in self.stalled + self.trickling),
            return_exceptions=True,
        )


async def test_a_hundred_slow_clients_do_not_hold_up_a_normal_one(
    server: Server, client: httpx.AsyncClient
) -> None:
    before = server.stored()
    slow = SlowClients(server.port)
    latencies: list[float] = []
    statuses: list[int] = []
    requests = [
        lambda: client.get("/api/v1/jobs", params={"limit": 5}),
        lambda: client.post("/api/v1/jobs", json={"source_type": "url",
                                                  "source_uri": "https://example.org/a"}),
        lambda: client.get("/healthz"),
        lambda: client.post("/api/v1/upload", files={"file": ("a.pdf", corpus.pdf())}),
    ]  # fmt: skip
    started = time.monotonic()
    try:
        await slow.open()
        await asyncio.sleep(1.5)  # the uploads have reached the app and opened their files
        assert len(server.stored() - before) == 50
        for number in range(20):
            sent = time.monotonic()
            response = await requests[number % len(requests)]()
            latencies.append(time.monotonic() - sent)
            statuses.append(response.status_code)
            await asyncio.sleep(0.25)
        assert slow.still_open() == 100  # they were really held open all along
        assert slow.bytes_trickled >= 50 * 5
    finally:
        await slow.close()
    listed = await client.get("/api/v1/jobs", params={"limit": 100})
    uploaded = {job["id"] for job in listed.json()["items"]}
    await wait_for_empty_storage(server, before | uploaded)  # the trickled files are gone

    print(
        f"\nslow clients: 100 held for {time.monotonic() - started:.1f}s; normal client over "
        f"{len(latencies)} requests: min {min(latencies) * 1000:.1f} ms, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    assert all(status in (200, 201) for status in statuses), statuses
    assert max(latencies) < 2.0
    assert server.chute.process is not None and server.chute.process.poll() is None


# -- heads -----------------------------------------------------------------------------------


async def test_a_head_just_under_the_limit_is_served(server: Server) -> None:
    padding = f"X-Padding: {'a' * (MAX_HEADER - 300)}"
    answer = await exchange(server.port, request_head("GET", "/api/v1/jobs", padding), wait=1)
    assert answer.status == 200


async def test_a_whole_head_over_the_limit_is_a_431_problem(server: Server) -> None:
    padding = f"X-Padding: {'a' * (MAX_HEADER + 100)}"
    answer = await exchange(server.port, request_head("GET", "/api/v1/jobs", padding), wait=1)
    assert_problem_answer(answer, 431, "request-header-fields-too-large")


async def test_a_head_still_growing_past_the_limit_is_a_400_and_the_connection_closes(
    server: Server,
) -> None:
    """The server itself (entrypoints/http/protocol.py) refuses a head still coming past
    the limit: a plain 400 before the app sees anything, then it closes."""
    start = b"GET /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
    answer = await exchange(server.port, start + b"a" * (MAX_HEADER // 2), b"a" * MAX_HEADER)
    assert answer.status == 400
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.closed


async def test_a_huge_head_sent_at_once_is_refused_with_the_connection_closed(
    server: Server,
) -> None:
    head = request_head("GET", "/api/v1/jobs", f"X-Padding: {'a' * 1024 * 1024}")
    answer = await exchange(server.port, head)
    print(f"\n1 MiB head sent at once: status {answer.status}, closed {answer.closed}")
    assert answer.status in (None, 400)  # reset while the client still writes, or a 400
    assert answer.closed


async def test_an_idle_connection_is_closed_after_the_keep_alive(server: Server) -> None:
    answer = await exchange(server.port, request_head("GET", "/healthz"), wait=KEEP_ALIVE + 3)
    assert answer.status == 200
    assert answer.closed and KEEP_ALIVE <= answer.seconds < KEEP_ALIVE + 1.5


# -- bodies ----------------------------------------------------------------------------------


async def test_a_json_body_over_its_route_limit_is_a_413(client: httpx.AsyncClient) -> None:
    body = b'{"source_type": "url", "source_uri": "https://e.org/a", "metadata": {"a": "'
    body += b"x" * (1024 * 1024) + b'"}}'
    response = await client.post(
        "/api/v1/jobs", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "payload-too-large"


async def test_a_chunked_json_body_growing_past_its_limit_is_a_413(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"worker_id": "w", "limit": 1, "padding": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = await client.post(
        "/api/v1/jobs/claim", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_a_route_without_a_body_answers_without_reading_one(server: Server) -> None:
    head = request_head(
        "POST", "/api/v1/jobs/0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41/retry",
        "Content-Length: 1073741824", "Content-Type: application/octet-stream",
    )  # fmt: skip
    answer = await exchange(server.port, head + b"x" * 1000)
    assert_problem_answer(answer, 404, "job-not-found")
    assert answer.closed and answer.seconds < 2  # closed at once, not after the keep-alive
    assert answer.headers["connection"] == "close"


async def test_an_unauthenticated_upload_is_refused_unread_and_closed(server: Server) -> None:
    before = server.stored()
    head = request_head(
        "POST", "/api/v1/upload", f"Content-Type: {MULTIPART}", "Content-Length: 5000000",
        auth=False,
    )  # fmt: skip
    answer = await exchange(server.port, head + file_part(b"x" * 50_000)[:50_000])
    assert_problem_answer(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.closed and answer.seconds < 2
    assert server.stored() == before


# -- upload limits: each a problem, nothing left on disk ---------------------------------------


async def post_upload(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/api/v1/upload", content=body, headers={"Content-Type": MULTIPART})


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        pytest.param(multipart(file_part(b"x" * (MAX_FILE + 1))), 413, "payload-too-large",
                     id="file-over-CHUTE_MAX_UPLOAD_BYTES"),
        pytest.param(multipart(*[file_part(corpus.pdf()) for _ in range(MAX_FILES + 1)]), 422,
                     "validation-error", id="files-over-CHUTE_MAX_FILES_PER_UPLOAD"),
        pytest.param(multipart(file_part(corpus.pdf()), field_part("metadata", b"x" * 70_000)),
                     422, "validation-error", id="text-field-over-64KiB"),
        pytest.param(multipart(file_part(corpus.pdf()),
                               field_part("mode", b"fast", f"X-Pad: {'a' * 17_000}\r\n")),
                     422, "validation-error", id="part-headers-over-16KiB"),
        pytest.param(multipart(file_part(corpus.pdf()), field_part("extra", b"1")), 422,
                     "validation-error", id="unknown-part"),
        pytest.param(multipart(file_part(corpus.pdf()), field_part("mode", b"fast"),
                               field_part("mode", b"fast")), 422, "validation-error",
                     id="field-twice"),
        pytest.param(file_part(corpus.pdf()) + b"--" + BOUNDARY.encode(), 422,
                     "validation-error", id="no-closing-boundary"),
    ],
)  # fmt: skip
async def test_an_upload_over_a_limit_is_a_problem_and_leaves_nothing_on_disk(
    server: Server, client: httpx.AsyncClient, body: bytes, status: int, type_: str
) -> None:
    before = server.stored()
    response = await post_upload(client, body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == type_
    await wait_for_empty_storage(server, before)


async def test_an_upload_declaring_more_than_the_total_limit_is_refused_unread(
    server: Server,
) -> None:
    """The total: every file at its limit, plus 1 MiB for part headers and fields."""
    before = server.stored()
    total = MAX_FILES * MAX_FILE + 1024 * 1024
    head = request_head(
        "POST", "/api/v1/upload", f"Content-Type: {MULTIPART}", f"Content-Length: {total + 1}"
    )
    answer = await exchange(server.port, head, wait=5)
    assert_problem_answer(answer, 413, "payload-too-large")
    assert str(total).encode() in answer.body
    # The body never comes: chute waits for it at most DRAIN_SECONDS, then closes.
    assert answer.closed and answer.seconds < 3
    assert server.stored() == before


async def test_a_chunked_upload_growing_past_the_total_limit_is_a_413(
    server: Server, client: httpx.AsyncClient
) -> None:
    before = server.stored()

    async def chunks() -> AsyncIterator[bytes]:
        yield file_part(b"x" * (MAX_FILE - 1))  # a file under every limit, then a preamble-
        for _ in range(40):  # like run of bytes between parts that no limit but the total sees
            yield b"y" * 32768
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    response = await client.post(
        "/api/v1/upload", content=chunks(), headers={"Content-Type": MULTIPART}
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "payload-too-large"
    await wait_for_empty_storage(server, before)


# -- the log -----------------------------------------------------------------------------------


def test_the_key_never_reaches_the_server_log(server: Server) -> None:
    """Last in the module: every request above carried the key, some in odd places."""
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        assert client.get("/api/v1/jobs", params={"api_key": KEY}).status_code == 401
        for authorization in (f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer  {KEY}"):
            response = client.get("/api/v1/jobs", headers={"Authorization": authorization})
            assert response.status_code == 401
    text = server.log.read_text()
    assert '"http.request"' in text and '"http.unauthorized"' in text
    assert KEY not in text and KEY.removeprefix("chute_") not in text
