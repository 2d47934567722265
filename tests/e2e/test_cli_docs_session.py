"""docs/cli.md's session, and the README's short one, run as written, step by step,
against a real `chute serve`: the `sh` blocks under "A session" and "From the terminal",
under `bash -euo pipefail` with a PATH of only the `chute` console script and python3,
as the README's curl session runs (test_readme_session)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.client_cli import chute_script, served
from tests.e2e.test_readme_session import README, ROOT, run_session, session_blocks, steps_of

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "cli.md"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    async with served(tmp_path, api_keys="") as chute:
        yield chute.base_url


def chute_and_python_only(tmp_path: Path) -> str:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "chute").symlink_to(chute_script())
    (folder / "python3").symlink_to(Path(sys.executable).resolve())
    return str(folder)


def test_the_cli_session_runs_as_written(server: str, tmp_path: Path) -> None:
    steps = steps_of(session_blocks(DOC.read_text(encoding="utf-8"), "## A session"))
    assert len(steps) >= 6
    path = chute_and_python_only(tmp_path)
    output = run_session(steps, server, tmp_path, path=path, name="docs/cli.md's session")
    assert "exit code 3" in output  # the last step's unknown job

    jobs = httpx.get(f"{server}/api/v1/jobs", params={"queue": "docs"}).json()["items"]
    assert sorted(job["source_type"] for job in jobs) == ["s3", "upload", "url", "url"]
    assert {job["status"] for job in jobs} == {"pending"}  # cancelled, then retried
    [queue] = httpx.get(f"{server}/api/v1/queues").json()["items"]
    assert (queue["name"], queue["paused"], queue["concurrency_limit"]) == ("docs", False, None)


def test_the_readmes_terminal_session_runs_as_written(server: str, tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    steps = steps_of(session_blocks(text, "## From the terminal"))
    assert len(steps) >= 4
    output = run_session(
        steps, server, tmp_path, path=chute_and_python_only(tmp_path), name="the README's"
    )
    assert "2" in output  # the two jobs of the tenant, counted from the JSON
    jobs = httpx.get(f"{server}/api/v1/jobs", params={"queue": "docs"}).json()["items"]
    assert sorted(job["source_type"] for job in jobs) == ["upload", "url"]
    [queue] = httpx.get(f"{server}/api/v1/queues").json()["items"]
    assert (queue["name"], queue["paused"]) == ("docs", False)
