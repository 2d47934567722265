"""`submit`: `chute submit` of `submit_files` small files (10 KiB PDFs) into one `chute
serve` on SQLite, against curl in a shell loop (one `curl -F file=@...` POST of
/api/v1/upload per file) to the same server, in the same run: the whole command's
time, start-up included, each side `rounds` times, the best of each counting.

Both sides upload one file a request; `chute submit` keeps four requests in flight on
one connection pool, the loop starts one curl process after another.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.core import Context, Figure, Target, recorded
from bench.procs import Server, base_env, chute_server
from bench.uploading import small_pdf


def run(ctx: Context) -> list[Figure]:
    curl = shutil.which("curl")
    if curl is None:
        raise RuntimeError("the submit benchmark's baseline needs curl")
    count = ctx.sizes.submit_files
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("submit", ctx) as data:
        folder = Path(tmp)
        files = folder / "files"
        files.mkdir()
        content = small_pdf(10 * 1024)
        for n in range(count):
            (files / f"doc-{n:04}.pdf").write_bytes(content)
        storage = folder / "storage"
        url = f"sqlite+aiosqlite:///{folder}/chute.db"
        rounds: list[dict[str, float]] = []
        with chute_server(folder, url, storage) as chute:
            _submit(chute, files)  # warm-up: the server loads its detectors
            for _ in range(ctx.sizes.rounds):
                rounds.append({"curl": _curl(chute, files, curl), "chute": _submit(chute, files)})
        data.update(files=count, rounds=rounds)
        figures = _figures(count, rounds)
        data["figures"] = figures
        return figures


def _curl(chute: Server, files: Path, curl: str) -> float:
    loop = (
        f"for f in {shlex.quote(str(files))}/*.pdf; do "
        f'{shlex.quote(curl)} -fsS -o /dev/null -F "file=@$f" {chute.url}/api/v1/upload; done'
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-euo", "pipefail", "-c", loop], check=True)
    return time.perf_counter() - started


def _submit(chute: Server, files: Path) -> float:
    argv = [str(Path(sys.executable).parent / "chute"), "submit", "--json"]
    names = sorted(str(path) for path in files.glob("*.pdf"))
    started = time.perf_counter()
    subprocess.run(
        [*argv, *names],
        env=base_env(CHUTE_URL=chute.url),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _figures(count: int, rounds: list[dict[str, Any]]) -> list[Figure]:
    chute = min(r["chute"] for r in rounds)
    curl = min(r["curl"] for r in rounds)
    return [
        Figure(
            "submit.files_per_s",
            count / chute,
            "files/s",
            count / curl,
            "curl loop files/s",
            Target("ratio", ">=", 1.0),
            note=f"{count} files of 10 KiB: chute submit {chute:.1f} s, curl loop {curl:.1f} s",
        )
    ]
