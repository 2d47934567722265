"""`chute submit` of files as a user sees it: its progress bars in a real terminal (tmux),
its memory while it streams 1 GiB, and `--wait`'s exit code when a job fails."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.client_cli import KEY, chute_script, client_env, served

pytestmark = pytest.mark.slow

GIB = 1024**3
MIB = 1024**2
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("cli-uploads")
    async with served(folder, max_upload_bytes=str(2 * GIB)) as chute:
        yield chute.base_url, folder / "storage"


def _capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (make system)")
def test_submit_shows_a_bar_per_file_and_one_in_total_in_a_terminal(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, _ = server
    names = [f"part-{n}.bin" for n in range(3)]
    for name in names:  # large enough to be caught mid-way; zeros compress nothing here
        (tmp_path / name).write_bytes(os.urandom(MIB) * 96)
    env = client_env(base_url)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith("CHUTE_"))
    done_file = tmp_path / "exit"
    command = (
        f"cd {shlex.quote(str(tmp_path))} && env {exports} {shlex.quote(chute_script())} "
        f"submit {' '.join(names)}; echo $? > {shlex.quote(str(done_file))}; sleep 30"
    )
    session = f"chute-cli-{os.getpid()}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", command],
        check=True,
        env={"PATH": os.environ["PATH"], "TERM": "xterm-256color"},
    )
    try:
        during, deadline = [], time.monotonic() + 60
        while not done_file.exists() and time.monotonic() < deadline:
            during.append(_capture(session))
            time.sleep(0.1)
        final = _capture(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)

    assert done_file.read_text().strip() == "0", final
    mid_way = [
        screen
        for screen in during
        if "total (3 files)" in screen and "%" in screen and "100.0%" not in screen
    ]
    assert mid_way, "no screen caught the bars mid-way:\n" + "\n---\n".join(during[-3:])
    for name in [*names, "total (3 files)"]:
        [line] = [line for line in final.splitlines() if line.startswith(name)]
        assert "100.0%" in line and "━" in line, final
    assert "100.7/100.7 MB" in final  # 96 MiB each, as rich counts bytes


def _rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def _stored_bytes(storage: Path) -> int:
    total = 0
    for folder, _, files in os.walk(storage):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def test_submit_of_1_gib_streams_in_flat_memory(server: tuple[str, Path], tmp_path: Path) -> None:
    base_url, storage = server
    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # sparse: 1 GiB of zeros that take no disk here
        f.truncate(GIB)
    before = _stored_bytes(storage)
    process = subprocess.Popen(
        [chute_script(), "submit", str(big), "--json", "--mode", "fast"],
        env=client_env(base_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    baseline: int | None = None
    peak = 0
    while process.poll() is None:
        rss = _rss_kib(process.pid)
        if rss is not None:
            if baseline is None and _stored_bytes(storage) - before > 16 * MIB:
                baseline = rss  # bytes flow: the client has imported and connected
            peak = max(peak, rss)
        time.sleep(0.02)
    _out, err = process.communicate()

    assert process.returncode == 0, err
    assert baseline is not None, "the upload ended before 16 MiB were seen in the storage"
    growth_mib = (peak - baseline) / 1024
    print(f"client RSS: {baseline / 1024:.0f} MiB when bytes flowed, peak {peak / 1024:.0f} MiB")
    assert growth_mib < 64, f"the client grew by {growth_mib:.0f} MiB"
    with httpx.Client(base_url=base_url, headers=AUTH) as client:
        [job] = client.get("/api/v1/jobs", params={"source_type": "upload"}).json()["items"][:1]
    assert job["file_name"] == "big.bin" and job["file_size"] == GIB


def _claim_and_report(base_url: str, queue: str, fail: bool) -> None:
    """Take the queue's jobs as a worker would; complete one, fail the other when `fail`."""
    with httpx.Client(base_url=f"{base_url}/api/v1", headers=AUTH, timeout=30) as client:
        deadline = time.monotonic() + 30
        while not client.get("/jobs", params={"queue": queue}).json()["items"]:
            assert time.monotonic() < deadline, "chute submit made no job"
            time.sleep(0.1)
        time.sleep(1.5)  # `--wait` opens its stream (which sends what comes after)
        claimed: list[dict[str, str]] = []
        while len(claimed) < 2 and time.monotonic() < deadline:
            body = {"worker_id": "w-cli", "limit": 2, "queues": [queue]}
            claimed += client.post("/jobs/claim", json=body).json()["jobs"]
            time.sleep(0.2)
        assert len(claimed) == 2
        time.sleep(0.5)  # the client sees them running
        first, second = claimed
        beat = {"worker_id": "w-cli", "progress": 50, "progress_message": "half way"}
        client.post(f"/jobs/{first['id']}/heartbeat", json=beat)
        time.sleep(1.5)  # the stream looks for progress of running jobs now and then
        client.post(f"/jobs/{first['id']}/complete", json={"worker_id": "w-cli"})
        if fail:
            report = {"worker_id": "w-cli", "error": "corrupt input", "retryable": False}
            client.post(f"/jobs/{second['id']}/fail", json=report)
        else:
            client.post(f"/jobs/{second['id']}/complete", json={"worker_id": "w-cli"})


@pytest.mark.parametrize("fail", [False, True], ids=["all-complete", "one-fails"])
def test_submit_wait_follows_the_jobs_live_and_exits_1_when_one_fails(
    server: tuple[str, Path], fail: bool
) -> None:
    base_url, _ = server
    queue = f"cli-wait-{int(fail)}"
    process = subprocess.Popen(
        [
            chute_script(),
            "submit",
            "https://example.org/1.pdf",
            "https://example.org/2.pdf",
            "--queue",
            queue,
            "--wait",
        ],
        env=client_env(base_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _claim_and_report(base_url, queue, fail)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()

    assert process.returncode == (1 if fail else 0), err
    assert "pending -> running" in out and "running -> completed" in out
    assert "progress 50% half way" in out
    assert ("running -> failed" in out) == fail
    assert "corrupt input" in out or not fail
