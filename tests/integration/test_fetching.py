"""UrlFetcher against a real HTTP server on 127.0.0.1, and its SSRF rules.

Nothing here leaves the machine. Tests that need a "public" host use a fake name that
the injected resolver maps to a public address, and a transport that delivers requests
for that address to the local server instead (and refuses any other destination):
the fetcher's own checks, request building and redirect handling are the ones that run.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chute.adapters.ingest.addresses import refusal
from chute.adapters.ingest.fetcher import FetchedResponse, UrlFetcher
from chute.application.worker import JobFailed

from tests import corpus
from tests.fileserver import BIG, FILES, Running, make_certificate, serve_files

PUBLIC = "93.184.215.14"  # a public address the tests pretend files.example has
LIMIT = BIG // 2


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with serve_files() as running:
        yield running


class Refusing(httpx.AsyncBaseTransport):
    """Records every request it is asked to send, and sends none."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise AssertionError(f"a request was sent to {request.url}")


class Rerouting(httpx.AsyncBaseTransport):
    """Delivers requests for PUBLIC to the local server; refuses any other destination."""

    def __init__(self, port: int, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.port, self.inner = port, inner or httpx.AsyncHTTPTransport()
        self.sent: list[tuple[str, str]] = []  # (address, Host header)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.host, request.headers["host"]))
        if request.url.host != PUBLIC or request.url.port != self.port:
            raise AssertionError(f"the fetcher tried to reach {request.url}")
        request.url = request.url.copy_with(host="127.0.0.1")
        return await self.inner.handle_async_request(request)


async def fake_dns(host: str, port: int) -> list[str]:
    if host in ("files.example", "other.example"):
        return [PUBLIC]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def fetcher(**options: object) -> UrlFetcher:
    defaults: dict[str, object] = {
        "timeout_seconds": 2,
        "max_redirects": 3,
        "max_bytes": LIMIT,
        "allow_private": True,
    }
    return UrlFetcher(**defaults | options)  # type: ignore[arg-type]


async def fetch_all(fetcher: UrlFetcher, url: str) -> tuple[FetchedResponse, bytes]:
    async with fetcher.fetch(url) as response:
        return response, b"".join([chunk async for chunk in response.chunks])


async def refused(fetcher: UrlFetcher, url: str) -> JobFailed:
    with pytest.raises(JobFailed) as caught:
        await fetch_all(fetcher, url)
    return caught.value


# -- downloading ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FILES))
async def test_fetch_streams_the_bytes_with_name_and_type(server: Running, name: str) -> None:
    response, body = await fetch_all(fetcher(), server.url(f"/files/{name}"))
    content, content_type = FILES[name]
    assert body == content
    assert response.filename == name
    assert response.content_type == content_type.split(";")[0]


async def test_fetch_takes_the_name_from_content_disposition(server: Running) -> None:
    response, body = await fetch_all(fetcher(), server.url("/named"))
    assert (response.filename, body) == ("résumé.pdf", corpus.pdf())


@pytest.mark.parametrize(
    "path",
    ["/redirect?to=/files/report.pdf", "/redirect?to=../files/report.pdf", "/chain/3"],
    ids=["relative", "dot-relative", "three-hops"],
)
async def test_fetch_follows_redirects(server: Running, path: str) -> None:
    response, body = await fetch_all(fetcher(), server.url(path))
    assert (response.filename, body) == ("report.pdf", corpus.pdf())
    assert response.url == server.url("/files/report.pdf")


async def test_fetch_follows_absolute_redirects(server: Running) -> None:
    target = server.url("/files/notes.txt")
    response, body = await fetch_all(fetcher(), server.url(f"/redirect?to={target}"))
    assert (response.filename, body) == ("notes.txt", corpus.text())


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "retryable", "words"),
    [
        ("/missing", False, "404"),
        ("/broken", True, "500"),
        ("/big", False, "larger than"),
        ("/big-unsized", False, "larger than"),
        ("/chain/4", False, "more than 3 redirects"),
        ("/redirect?to=ftp://127.0.0.1/file", False, "only http and https"),
        ("/redirect?to=file:///etc/passwd", False, "only http and https"),
    ],
)
async def test_fetch_fails_clearly(server: Running, path: str, retryable: bool, words: str) -> None:
    error = await refused(fetcher(), server.url(path))
    assert words in str(error)
    assert error.retryable is retryable


async def test_a_server_that_never_finishes_is_cut_at_the_timeout(server: Running) -> None:
    started = time.monotonic()
    error = await refused(fetcher(timeout_seconds=1), server.url("/hang"))
    assert "timed out" in str(error) and error.retryable
    assert time.monotonic() - started < 3


async def test_a_name_that_does_not_resolve_is_retried_like_a_refused_connection() -> None:
    error = await refused(fetcher(resolver=fake_dns), "http://nowhere.example/a.pdf")
    assert "cannot resolve nowhere.example" in str(error) and error.retryable


async def test_an_unreachable_port_is_a_retryable_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connection is refused
        error = await refused(fetcher(), f"http://127.0.0.1:{port}/")
    assert error.retryable and "could not fetch" in str(error)


# -- addresses --------------------------------------------------------------------------

PRIVATE_URLS = [
    "http://127.0.0.1/",
    "http://localhost:8080/admin",
    "http://[::1]/",
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/",
    "https://100.64.0.1/",
    "http://2130706433/",  # 127.0.0.1 as one number, as the system resolver reads it
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_private_addresses_are_refused_before_any_connection(url: str) -> None:
    transport = Refusing()
    error = await refused(fetcher(allow_private=False, transport=transport), url)
    assert "is not public" in str(error) and not error.retryable
    assert "CHUTE_FETCH_ALLOW_PRIVATE=true" in str(error)  # the way out, named
    assert transport.requests == []


@pytest.mark.parametrize("url", ["ftp://files.example/a", "file:///etc/passwd", "gopher://x/"])
async def test_other_schemes_are_refused_before_any_connection(url: str) -> None:
    transport = Refusing()
    error = await refused(fetcher(transport=transport, resolver=fake_dns), url)
    assert "only http and https" in str(error) and not error.retryable
    assert transport.requests == []


async def test_a_host_is_refused_when_any_of_its_addresses_is_private() -> None:
    async def split_dns(host: str, port: int) -> list[str]:
        return [PUBLIC, "10.1.2.3"]

    transport = Refusing()
    options = {"allow_private": False, "transport": transport, "resolver": split_dns}
    error = await refused(fetcher(**options), "http://files.example/a.pdf")
    assert "10.1.2.3" in str(error)
    assert transport.requests == []


async def test_a_public_host_is_reached_at_the_checked_address_with_its_name(
    server: Running,
) -> None:
    transport = Rerouting(server.port)
    options = {"allow_private": False, "transport": transport, "resolver": fake_dns}
    url = server.url("/host", host="files.example")
    _, body = await fetch_all(fetcher(**options), url)
    assert body == f"files.example:{server.port}".encode()
    assert transport.sent == [(PUBLIC, f"files.example:{server.port}")]


async def test_a_redirect_to_a_private_address_is_refused(server: Running) -> None:
    transport = Rerouting(server.port)
    options = {"allow_private": False, "transport": transport, "resolver": fake_dns}
    inside = server.url("/files/report.pdf")
    error = await refused(
        fetcher(**options), server.url(f"/redirect?to={inside}", host="files.example")
    )
    assert "127.0.0.1" in str(error) and not error.retryable
    assert len(transport.sent) == 1  # the redirect was followed by nothing


@pytest.mark.parametrize(
    "address",
    ["2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe", "64:ff9b::a00:1", "fe80::1",
     "fc00::1", "ff02::1", "224.0.0.1", "192.168.1.1", "172.16.0.1", "240.0.0.1", "::"],
)  # fmt: skip
def test_address_forms_that_reach_private_networks_are_refused(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", [PUBLIC, "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


# -- TLS: the checked address, the original name --------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_https_verifies_the_certificate_against_the_name(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path, "files.example")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    with serve_files(tls) as server:
        transport = Rerouting(server.port, httpx.AsyncHTTPTransport(verify=trusting))
        options = {"allow_private": False, "transport": transport, "resolver": fake_dns}
        url = server.url("/files/report.pdf", host="files.example")
        _, body = await fetch_all(fetcher(**options), url)
        assert body == corpus.pdf()

        wrong = await refused(fetcher(**options), url.replace("files.example", "other.example"))
        assert "certificate" in str(wrong).lower() or "hostname" in str(wrong).lower()
