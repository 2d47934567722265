"""The `chute` command as a user meets it first: its version, its answer to bad settings,
and its log lines when they go to a file rather than a terminal."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import version
from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.faults import chute

SECRET = "not a usable key"


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHUTE_")}
    return subprocess.run(
        chute(*args), env=clean | env, capture_output=True, text=True, timeout=60, check=False
    )


def test_version_prints_the_installed_version() -> None:
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"chute {version('chute')}"


def test_bad_settings_are_named_as_variables_without_their_values() -> None:
    done = run("migrate", CHUTE_API_KEYS=SECRET, CHUTE_PORT="eighty")

    assert done.returncode == 2
    assert "CHUTE_API_KEYS:" in done.stderr and "CHUTE_PORT:" in done.stderr
    assert "api_keys" not in done.stderr and SECRET not in done.stderr
    assert "Traceback" not in done.stderr


def test_console_logs_carry_no_colour_codes_when_not_on_a_terminal(tmp_path: Path) -> None:
    done = run(
        "migrate",
        CHUTE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'chute.db'}",
        CHUTE_LOG_FORMAT="console",
        CHUTE_LOG_LEVEL="DEBUG",
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr.strip()  # the migration's lines were written
    assert "\x1b[" not in done.stderr


async def test_job_history_is_documented_with_the_jobs_not_the_workers(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        paths = (await client.get("/openapi.json")).json()["paths"]
    assert paths["/api/v1/jobs/{job_id}/events"]["get"]["tags"] == ["jobs"]
    assert paths["/api/v1/jobs/claim"]["post"]["tags"] == ["workers"]
