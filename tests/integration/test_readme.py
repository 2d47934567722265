"""The Python examples of the README and of docs/ run as they are written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    (page, block)
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
]


def test_the_readme_and_the_python_api_have_examples() -> None:
    pages = {page.relative_to(ROOT).as_posix() for page, _ in EXAMPLES}
    assert {"README.md", "docs/python-api.md"} <= pages


@pytest.mark.parametrize(
    ("page", "block"),
    EXAMPLES,
    ids=[f"{page.relative_to(ROOT).as_posix()}-{n}" for n, (page, _) in enumerate(EXAMPLES)],
)
def test_example_runs(page: Path, block: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.replace("/tmp/pipeline", str(tmp_path / "files")))
    done = subprocess.run(
        [sys.executable, script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
