"""A real Prometheus (Debian's `prometheus`, which `make test` installs) scrapes a real
`chute serve` behind an API key with the README's scrape configuration, and its query
API gives back the counters of what was done, with route templates as labels."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import sqlite_url
from tests.faults import URL_JOB, ChuteServer, chute_env
from tests.pg import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
KEY = "scrape-test-key-0123456789abcdef"
PROMETHEUS = shutil.which("prometheus")


def readme_scrape_config() -> str:
    """The YAML block of the README's "Metrics and traces" section."""
    section = (ROOT / "README.md").read_text().split("## Metrics and traces", 1)[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found, "the README shows no scrape configuration"
    return found.group(1)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ChuteServer]:
    env = chute_env(sqlite_url(tmp_path / "chute.db"), tmp_path / "storage", api_keys=KEY)
    async with ChuteServer(env, tmp_path / "serve.log") as chute:
        yield chute


def spawn(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
async def prometheus(server: ChuteServer, tmp_path: Path) -> AsyncIterator[str]:
    if PROMETHEUS is None:
        pytest.skip("Debian's prometheus is not installed (make test installs it as root)")
    key_file = tmp_path / "chute-key"
    key_file.write_text(KEY)
    config = readme_scrape_config()
    assert "/etc/prometheus/chute-key" in config and "127.0.0.1:8000" in config
    config = config.replace("/etc/prometheus/chute-key", str(key_file))
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text("global:\n  scrape_interval: 1s\n" + config)
    port = free_port()
    log = tmp_path / "prometheus.log"
    process = spawn(
        [PROMETHEUS, f"--config.file={config_file}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        log,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    if (await client.get("/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()
                await asyncio.sleep(0.1)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def query(client: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/query", params={"query": promql})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def until(client: httpx.AsyncClient, promql: str, expected: float) -> list[dict[str, Any]]:
    """The result of `promql` once its single value is `expected` (scrapes come each second)."""
    deadline = time.monotonic() + 30
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = await query(client, promql)
        if len(result) == 1 and float(result[0]["value"][1]) == expected:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError(f"{promql} did not reach {expected}: {result}")


async def test_prometheus_scrapes_chute_and_gives_its_counters_back(
    server: ChuteServer, prometheus: str
) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as chute:
        ids = []
        for queue in ("mail", "mail", "video"):
            response = await chute.post("/api/v1/jobs", json=URL_JOB | {"queue": queue})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        for job_id in ids:
            assert (await chute.get(f"/api/v1/jobs/{job_id}")).status_code == 200
    async with httpx.AsyncClient(base_url=prometheus, timeout=5) as client:
        await until(client, 'up{job="chute"}', 1)
        await until(client, 'chute_jobs_created_total{job="chute",queue="mail"}', 2)
        await until(client, 'sum(chute_jobs_created_total{job="chute"})', 3)
        await until(client, 'sum(chute_jobs{job="chute",status="pending"})', 3)
        await until(
            client,
            'sum(chute_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="200"})',
            3,
        )
        routes = {r["metric"]["route"] for r in await query(client, "chute_http_requests_total")}
        assert routes, "no request was counted"
        assert not any(job_id in route for route in routes for job_id in ids), routes
