"""The documentation stands on its own: nothing in the repository points at a file
outside it, and every relative link of the README and of docs/ leads somewhere."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Files of the team's spec, which live beside the repository and which chute's users
# never see. Spelt in pieces so that this file does not name them itself.
OUTSIDE = re.compile(
    r"(?<![\w.-])(?:" + "|".join(("API", "DESIGN", "STYLE")) + r")\.md\b" + r"|\.\./" + "shared\\b"
)


def repository_files() -> list[Path]:
    """Every file git tracks, and every new one it does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [ROOT / name for name in sorted(set(listed.split("\0"))) if name]


def test_no_file_points_outside_the_repository() -> None:
    files = repository_files()
    assert ROOT / "README.md" in files
    found = []
    for path in files:
        if not path.is_file():  # deleted in the work tree, not yet in the index
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "point at docs/ instead:\n" + "\n".join(found)


def test_the_outside_pattern_finds_what_it_must() -> None:
    names = ("API", "DESIGN", "STYLE")
    for text in [f"see {name}.md" for name in names] + ["in ../" + "shared/tools"]:
        assert OUTSIDE.search(text), text
    for text in ("docs/http-api.md", "bench/README.md", "OPENAPI.md", "../" + "shared_data"):
        assert not OUTSIDE.search(text), text


# -- links ---------------------------------------------------------------------------------

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text without code blocks and inline code, where brackets are not links."""
    return CODE.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (but `-` and
    `_`), spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    kept = (c for c in text if c in " -" or unicodedata.category(c)[0] in "LMN" or c == "_")
    return "".join(kept).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a Markdown page's headings (repeats get -1, -2... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {linked.name}")
    return broken


def test_the_docs_folder_has_its_pages() -> None:
    names = {page.name for page in PAGES}
    assert {"http-api.md", "operations.md", "python-api.md", "architecture.md"} <= names


def test_every_relative_link_points_to_an_existing_file() -> None:
    broken = {str(page.relative_to(ROOT)): links for page in PAGES if (links := broken_links(page))}
    assert broken == {}


def test_the_slugs_are_githubs() -> None:
    assert slug("The `chute` command") == "the-chute-command"
    assert slug("A job's history") == "a-jobs-history"
    assert slug("The built-in processor, `ingest`") == "the-built-in-processor-ingest"
    assert slug("Limits and the reverse proxy") == "limits-and-the-reverse-proxy"


# -- settings ------------------------------------------------------------------------------


def test_every_setting_is_documented_with_its_default() -> None:
    from chute.entrypoints.settings import Settings

    rows = {
        line.split("|")[1].strip(): line
        for line in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `CHUTE_")
    }
    missing, wrong = [], []
    for name, field in Settings.model_fields.items():
        variable = f"`CHUTE_{name.upper()}`"
        if variable not in rows:
            missing.append(variable)
            continue
        default = field.default
        shown = (
            "empty" if default == ()
            else "unset" if default is None
            else f"`{str(default).lower()}`" if isinstance(default, bool)
            else f"`{default}`"
        )  # fmt: skip
        if shown not in rows[variable].split("|")[2]:
            wrong.append(f"{variable}: the default is {shown}")
    assert (missing, wrong) == ([], [])
