"""The layer rules (docs/architecture.md), checked on every import of every module."""

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
    "obstore",
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


WEB = {"fastapi", "starlette", "uvicorn"}


def test_the_composition_root_imports_no_web_framework() -> None:
    """`chute worker`, `chute purge`, benchmarks and library users build the engine
    through `bootstrap.py` without loading FastAPI."""
    modules = {m.split(".")[0] for _, m in imports_of(ROOT / "entrypoints" / "bootstrap.py")}
    assert modules & WEB == set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["chute", *parts])


def module_imports(path: Path) -> set[str]:
    """The chute modules that `path` imports at module level, for running or for typing
    (under `if TYPE_CHECKING:`); imports inside functions are left out."""
    found = set()
    body = ast.parse(path.read_text(encoding="utf-8")).body
    typing_only = [
        n.body for n in body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.dump(n.test)
    ]
    for node in body + [stmt for block in typing_only for stmt in block]:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("chute.")}


def test_no_modules_import_each_other_in_a_circle() -> None:
    modules = {module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    graph = {name: module_imports(path) & modules.keys() - {name} for name, path in modules.items()}
    # A package's __init__ re-exporting its own modules is not a circle of theirs.
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in graph.items()}
    circles, done, path = [], set(), []

    def visit(node: str) -> None:
        if node in path:
            circles.append([*path[path.index(node) :], node])
            return
        if node in done:
            return
        path.append(node)
        for child in sorted(graph[node]):
            visit(child)
        path.pop()
        done.add(node)

    for name in sorted(graph):
        visit(name)
    assert circles == []
