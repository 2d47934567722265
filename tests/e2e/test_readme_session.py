"""The README's curl session runs as written, step by step, against a real `chute serve`.

The session is the `sh` block(s) under the README's "A session with curl" heading (and
a second one, run on a server of its own, under "Queues, schedules and bulk actions"). It
runs under `bash -euo pipefail` with a PATH that holds only curl and python3, so that
it uses nothing else; the README's base URL and scratch file are replaced by the test
server's and the test's own. Each step (a paragraph of the block) is followed by a
marker, so that a failure names the step that failed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import sqlite_url
from tests.faults import ChuteServer, chute_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "## A session with curl"
QUEUES_HEADING = "## Queues, schedules and bulk actions"
BASE_URL = "http://127.0.0.1:8000"
SCRATCH = "/tmp/hello.pdf"
MARKER = "@@ step {} ok"


def session_blocks(text: str, heading: str = HEADING) -> list[str]:
    """The `sh` blocks of the README's section under `heading`."""
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def steps_of(blocks: list[str]) -> list[str]:
    """The steps of the session: its paragraphs, each a comment and its commands."""
    return [step.strip() for block in blocks for step in block.split("\n\n") if step.strip()]


def script_of(steps: list[str], base_url: str, scratch: Path) -> str:
    """The session as one script, with a marker printed after each step."""
    lines = []
    for number, step in enumerate(steps, start=1):
        lines.append(step.replace(BASE_URL, base_url).replace(SCRATCH, str(scratch)))
        lines.append(f"printf '\\n{MARKER.format(number)}\\n'")
    return "\n".join(lines) + "\n"


def curl_and_python_only(tmp_path: Path) -> str:
    """A PATH of one folder holding only `curl` and `python3`."""
    folder = tmp_path / "bin"
    folder.mkdir()
    curl = shutil.which("curl")
    assert curl is not None, "the README's session needs curl"
    (folder / "curl").symlink_to(curl)
    # The interpreter itself, not a launcher (a pyenv shim is a bash script).
    (folder / "python3").symlink_to(Path(sys.executable).resolve())
    return str(folder)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    """`chute serve` on a free port, a fresh SQLite file and its own storage, no keys."""
    env = chute_env(
        sqlite_url(tmp_path / "var" / "chute.db"),
        tmp_path / "storage",
        api_keys="",
        allowed_types="",
        log_level="WARNING",
    )
    async with ChuteServer(env, tmp_path / "server.log") as chute:
        yield chute.base_url


def test_the_readme_has_a_curl_session() -> None:
    steps = steps_of(session_blocks(README.read_text(encoding="utf-8")))
    assert len(steps) >= 5
    assert all(BASE_URL in step for step in steps)


def run_session(
    steps: list[str],
    server: str,
    tmp_path: Path,
    *,
    path: str | None = None,
    name: str = "the README's curl session",
) -> list[str]:
    """Run the steps as one script with only the programs in `path` (default: curl and
    python3); the lines it printed (a failure names its step of the session `name`)."""
    script = tmp_path / "session.sh"
    script.write_text(script_of(steps, server, tmp_path / "hello.pdf"))
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "-euo", "pipefail", str(script)],
        cwd=ROOT,  # the session uploads README.md from the checkout's folder
        env={
            "PATH": path or curl_and_python_only(tmp_path),
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "COLUMNS": "160",  # for the tables of the `chute` client (docs/cli.md)
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout.splitlines()
    passed = [n for n in range(1, len(steps) + 1) if MARKER.format(n) in output]
    failed = len(passed) + 1
    assert done.returncode == 0 and len(passed) == len(steps), (
        f"step {failed} of {name} failed (exit {done.returncode}):\n"
        f"{steps[failed - 1] if failed <= len(steps) else ''}\n"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
    return output


def test_the_readme_curl_session_runs_as_written(server: str, tmp_path: Path) -> None:
    steps = steps_of(session_blocks(README.read_text(encoding="utf-8")))
    output = run_session(steps, server, tmp_path)

    # The last step lists every job, one line each: it shows the jobs the server holds.
    start = output.index(MARKER.format(len(steps) - 1)) + 1
    end = output.index(MARKER.format(len(steps)))
    listed = [line.split() for line in output[start:end] if line.strip()]
    jobs = httpx.get(f"{server}/api/v1/jobs", params={"sort": "created_at"}).json()["items"]
    assert len(jobs) == 5  # one job, a batch of two, an upload of two files
    assert [line[:3] for line in listed] == [
        [job["id"], job["status"], job["source_type"]] for job in jobs
    ]
    assert {job["source_type"] for job in jobs} == {"url", "s3", "upload"}


def test_the_readme_queues_session_runs_as_written(server: str, tmp_path: Path) -> None:
    steps = steps_of(session_blocks(README.read_text(encoding="utf-8"), QUEUES_HEADING))
    assert len(steps) >= 5 and all(BASE_URL in step for step in steps)
    run_session(steps, server, tmp_path)

    queues = httpx.get(f"{server}/api/v1/queues").json()["items"]
    settings = {q["name"]: (q["paused"], q["concurrency_limit"]) for q in queues}
    assert settings == {"nightly": (False, None), "thumbnails": (False, None)}
    jobs = httpx.get(f"{server}/api/v1/jobs", params={"metadata.tenant": "acme"}).json()
    assert [job["status"] for job in jobs["items"]] == ["pending", "pending"]  # retried
    nightly = [job for job in jobs["items"] if job["queue"] == "nightly"]
    events = httpx.get(f"{server}/api/v1/jobs/{nightly[0]['id']}/events").json()["items"]
    assert [event["to_status"] for event in events] == ["pending", "cancelled", "pending"]
    assert httpx.get(f"{server}/api/v1/schedules").json() == {"items": []}
