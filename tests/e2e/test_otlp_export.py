"""A real `chute serve` and a real `chute worker` with OTEL_EXPORTER_OTLP_ENDPOINT set send
their spans over OTLP/HTTP to a collector stand-in (a small HTTP server in a thread that
keeps what is posted to /v1/traces): the worker's span of a job is in the trace of the
request that created it, across processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute, chute_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
Span = tuple[str, str, bytes, bytes, bytes]  # service, name, trace id, span id, parent id


class Collector(ThreadingHTTPServer):
    spans: list[Span]
    lock: threading.Lock


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest.FromString(body)
            with self.server.lock:
                for resource in request.resource_spans:
                    names = [a for a in resource.resource.attributes if a.key == "service.name"]
                    service = names[0].value.string_value if names else ""
                    for scope in resource.scope_spans:
                        self.server.spans += [
                            (service, s.name, s.trace_id, s.span_id, s.parent_span_id)
                            for s in scope.spans
                        ]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), Handler)
    server.spans, server.lock = [], threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = chute("worker", "--processor", "tests.processors:sleepy", "--worker-id", "w1")
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(30)


async def test_the_worker_continues_the_trace_of_the_request_across_processes(
    tmp_path: Path,
) -> None:
    with collector() as otlp:
        env = chute_env(sqlite_url(tmp_path / "chute.db"), tmp_path / "storage")
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp.server_address[1]}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",  # milliseconds: send soon
            "CHUTE_WORKER_POLL_SECONDS": "0.1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        server = ChuteServer(env | {"OTEL_SERVICE_NAME": "chute-api"}, tmp_path / "serve.log")
        await server.start()
        worker = start_worker(env | {"OTEL_SERVICE_NAME": "chute-worker"}, tmp_path / "w.log")
        try:
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                created = await client.post(
                    "/api/v1/jobs",
                    json={"source_type": "url", "source_uri": "https://example.org/a"},
                )
                assert created.status_code == 201
                job_id = created.json()["id"]
                deadline = time.monotonic() + 60
                while (await client.get(f"/api/v1/jobs/{job_id}")).json()["status"] != "completed":
                    assert time.monotonic() < deadline, (tmp_path / "w.log").read_text()
                    await asyncio.sleep(0.1)
        finally:
            assert stop(worker) == 0
            server.stop()  # both send what they still hold as they stop
        with otlp.lock:
            spans = list(otlp.spans)

    def only(service: str, name: str) -> Span:
        found = [s for s in spans if s[:2] == (service, name)]
        assert len(found) == 1, sorted({s[:2] for s in spans})
        return found[0]

    request = only("chute-api", "POST /api/v1/jobs")
    create = only("chute-api", "chute.create_job")
    job = only("chute-worker", "chute.job")
    assert create[2] == request[2] and create[4] == request[3]
    assert job[2] == request[2]  # the same trace, across processes
    assert job[4] == create[3]  # a child of the span that created the job
    # SQL statements are spans too, in both processes.
    assert any(s[0] == "chute-worker" and s[1].startswith(("SELECT", "UPDATE")) for s in spans)
