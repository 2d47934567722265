"""Helpers of the client commands' tests (`tests/e2e/test_client_cli*.py`): the installed
`chute` console script run as a user runs it, against a real `chute serve`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

KEY = "cli-test-key-0123456789abcdef"


def chute_script() -> str:
    """The `chute` console script of this environment (what `pip install` made)."""
    found = Path(sys.executable).parent / "chute"
    return str(found) if found.exists() else shutil.which("chute") or "chute"


def client_env(server: str, **extra: str) -> dict[str, str]:
    """An environment with no server setting at all: only where the server is, and
    its key."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHUTE_")}
    return clean | {"CHUTE_URL": server, "CHUTE_API_KEY": KEY, "COLUMNS": "200"} | extra


def run(
    server: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`chute ARGS` against `server`; its exit code and output."""
    return subprocess.run(
        [chute_script(), *args],
        env=env or client_env(server),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_json(server: str, *args: str) -> Any:
    done = run(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@asynccontextmanager
async def served(tmp_path: Path, **settings: str) -> AsyncIterator[ChuteServer]:
    """`chute serve` on a fresh SQLite file and storage folder, asking for `KEY`."""
    env = chute_env(
        sqlite_url(tmp_path / "chute.db"),
        tmp_path / "storage",
        **{"api_keys": KEY, "allowed_types": "", "log_level": "WARNING"} | settings,
    )
    async with ChuteServer(env, tmp_path / "server.log") as server:
        yield server
