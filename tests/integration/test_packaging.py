"""chute installs from its wheel as one `chute` namespace, and every module imports."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

IMPORT_ALL = """
import importlib, pkgutil, sys, pathlib
import chute.domain, chute.application, chute.adapters, chute.entrypoints
names = []
for package in (chute.domain, chute.application, chute.adapters, chute.entrypoints):
    names.append(package.__name__)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in names:
    module = importlib.import_module(name)
    assert pathlib.Path(module.__file__).is_relative_to(sys.argv[1]), (name, module.__file__)
for bare in ("domain", "application", "adapters", "entrypoints"):
    try:
        importlib.import_module(bare)
    except ModuleNotFoundError:
        continue
    raise AssertionError(f"a bare {bare!r} package is installed")
print(len(names))
"""

MIGRATE = """
import asyncio, sys
from chute.adapters.sqlalchemy import upgrade
asyncio.run(upgrade("sqlite+aiosqlite:///" + sys.argv[1]))
"""


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_virtualenv_and_every_module_imports(tmp_path: Path) -> None:
    dist, env = tmp_path / "dist", tmp_path / "env"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT)
    [wheel] = dist.glob("chute-*.whl")
    run(sys.executable, "-m", "venv", "--without-pip", env)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
    # The dependencies come from this test run's environment; a plain path entry (not a
    # site dir) so that the editable install of the work tree is not picked up.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--quiet",
        "--no-index",
        wheel,
    )
    count = run(python, "-c", IMPORT_ALL, site, cwd=tmp_path)
    assert int(count) >= 20
    run(python, "-c", MIGRATE, tmp_path / "chute.db", cwd=tmp_path)
    assert (tmp_path / "chute.db").stat().st_size > 0
    assert "serve" in run(env / "bin" / "chute", "--help", cwd=tmp_path)


def run(*args: object, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()
