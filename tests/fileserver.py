"""A small HTTP server on 127.0.0.1 for fetching tests, run in a thread by the test itself.

    with serve_files() as server:
        server.url("/files/report.pdf")     # http://127.0.0.1:<port>/files/report.pdf

Routes: `/files/<name>` (the FILES below), `/named` (a Content-Disposition name),
`/big` (too large, with Content-Length), `/big-unsized` (too large, without it),
`/missing` (404), `/broken` (500), `/hang` (headers and a few bytes, then nothing),
`/redirect?to=<url>`, `/chain/<n>` (n redirects before a file), `/host` (echoes Host).
It can also speak TLS with a certificate made by `make_certificate`.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests import corpus

BIG = 64 * 1024  # bigger than the tests' limit
FILES: dict[str, tuple[bytes, str]] = {
    "report.pdf": (corpus.pdf(), "application/pdf"),
    "image.png": (corpus.png(), "image/png"),
    "data.json": (corpus.json_document(), "application/json; charset=utf-8"),
    "notes.txt": (corpus.text(), "text/plain"),
}


class Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        route, query = parts.path, parse_qs(parts.query)
        if route.startswith("/files/") and route[len("/files/") :] in FILES:
            self.send(*FILES[route[len("/files/") :]])
        elif route == "/named":
            disposition = "attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
            self.send(corpus.pdf(), "application/pdf", {"Content-Disposition": disposition})
        elif route == "/big":
            self.send(b"x" * BIG, "application/octet-stream")
        elif route == "/big-unsized":
            self.send_unsized(b"x" * BIG)
        elif route == "/broken":
            self.send(b"oops", "text/plain", status=500)
        elif route == "/hang":
            self.hang()
        elif route == "/redirect":
            self.redirect(query["to"][0])
        elif route.startswith("/chain/"):
            left = int(route.rsplit("/", 1)[1])
            self.redirect(f"/chain/{left - 1}" if left > 1 else "/files/report.pdf")
        elif route == "/host":
            self.send(self.headers["Host"].encode(), "text/plain")
        else:
            self.send(b"not found", "text/plain", status=404)

    def send(
        self,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
        status: int = 200,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_unsized(self, body: bytes) -> None:
        self.close_connection = True  # HTTP/1.0: the body ends when the connection closes
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        for start in range(0, len(body), 4096):
            self.wfile.write(body[start : start + 4096])

    def hang(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"%PDF-1.4\n")
        self.wfile.flush()
        self.server.released.wait(30)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet


class FileServer(ThreadingHTTPServer):
    daemon_threads = True
    released: threading.Event


@dataclass(frozen=True)
class Running:
    port: int
    scheme: str = "http"

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"


@contextmanager
def serve_files(tls: ssl.SSLContext | None = None) -> Iterator[Running]:
    """The server on a free port of 127.0.0.1, for the `with` block."""
    server = FileServer(("127.0.0.1", 0), Handler)
    server.released = threading.Event()
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(server.server_address[1], "https" if tls else "http")
    finally:
        server.released.set()  # let hanging handlers end
        server.shutdown()
        server.server_close()


def make_certificate(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
