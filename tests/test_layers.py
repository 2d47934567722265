"""The layer rules of docs/architecture.md, checked on every import of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "application", "adapters", "entrypoints")
MAY_IMPORT = {
    "domain": {"domain"},
    "application": {"domain", "application"},
    "adapters": {"domain", "application", "adapters"},
    "entrypoints": set(LAYERS),
}
# The core is plain Python: no framework, driver or detector library.
FRAMEWORKS = {
    "fastapi",
    "starlette",
    "sqlalchemy",
    "aiosqlite",
    "asyncpg",
    "pydantic",
    "pydantic_settings",
    "structlog",
    "dependency_injector",
    "uvicorn",
    "magika",
    "puremagic",
    "magic",
    "httpx",
    "alembic",
    "multipart",
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "<relative import>"))
            elif node.module:
                found.append((node.lineno, node.module))
    return found


def broken_rules(layer: str) -> list[str]:
    broken = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for line, module in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            parts = module.split(".")
            if module == "<relative import>":
                broken.append(f"{where}: relative import (use chute.{layer}...)")
            elif parts[0] in LAYERS:
                broken.append(f"{where}: bare import of {module} (use chute.{module})")
            elif parts[0] == "chute" and len(parts) > 1 and parts[1] not in MAY_IMPORT[layer]:
                broken.append(f"{where}: {layer} imports {module}")
            elif layer in ("domain", "application") and parts[0] in FRAMEWORKS:
                broken.append(f"{where}: {layer} imports the framework {module}")
    return broken


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_design_allows(layer: str) -> None:
    assert (ROOT / layer).is_dir()
    assert broken_rules(layer) == []


def test_the_checker_catches_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sqlalchemy\nfrom chute.entrypoints import app\nfrom . import x\n")
    assert [m for _, m in imports_of(bad)] == [
        "sqlalchemy",
        "chute.entrypoints",
        "<relative import>",
    ]
