"""One media type per format, whichever detector named it."""

from __future__ import annotations

import pytest
from chute.adapters.media_types import MAGIKA_LABELS, canonical_for_label, is_wider
from chute.domain.media_types import CANONICAL_NAMES, canonical
from chute.domain.validation import check_mime_pattern, check_mime_type

OOXML = "application/vnd.openxmlformats-officedocument"
# Every name each detector gives these formats: libmagic's from file 5.44's database
# and its built-in JSON and CSV checks; Magika's (label, MIME name, is text) from the
# table of its standard_v3_3 model. Each format must come out under one name.
NAMES: dict[str, tuple[set[str], set[tuple[str, str | None, bool]], str]] = {
    "elf": (
        {"application/x-executable", "application/x-pie-executable", "application/x-sharedlib"},
        {("elf", "application/x-executable-elf", False)},
        "application/x-executable",
    ),
    "pe": (
        {"application/vnd.microsoft.portable-executable"},
        {("pebin", "application/x-dosexec", False)},
        "application/vnd.microsoft.portable-executable",
    ),
    "mach-o": (
        {"application/x-mach-binary"},
        {("macho", "application/x-mach-o", False)},
        "application/x-mach-binary",
    ),
    "zip": (
        {"application/zip", "application/x-zip"},
        {("zip", "application/zip", False)},
        "application/zip",
    ),
    "docx": (
        {f"{OOXML}.wordprocessingml.document"},
        {("docx", f"{OOXML}.wordprocessingml.document", False)},
        f"{OOXML}.wordprocessingml.document",
    ),
    "gzip": (
        {"application/gzip", "application/x-gzip"},
        {("gzip", "application/gzip", False)},
        "application/gzip",
    ),
    "tar": (
        {"application/x-tar", "application/x-gtar", "application/x-ustar"},
        {("tar", "application/x-tar", False)},
        "application/x-tar",
    ),
    "rar": ({"application/x-rar"}, {("rar", "application/x-rar", False)}, "application/vnd.rar"),
    "sqlite": (
        {"application/vnd.sqlite3", "application/x-sqlite3"},
        {("sqlite", None, False)},
        "application/vnd.sqlite3",
    ),
    "json": ({"application/json"}, {("json", "application/json", True)}, "application/json"),
    "json lines": (
        {"application/x-ndjson"},
        {("jsonl", "application/json", True)},
        "application/x-ndjson",
    ),
    "xml": ({"text/xml"}, {("xml", "text/xml", True)}, "application/xml"),
    "yaml": (set(), {("yaml", "application/x-yaml", True)}, "application/yaml"),
    "markdown": (set(), {("markdown", "text/markdown", True)}, "text/markdown"),
    "shell": (
        {"text/x-shellscript"},
        {("shell", "text/x-shellscript", True)},
        "text/x-shellscript",
    ),
    "python": ({"text/x-script.python"}, {("python", "text/x-python", True)}, "text/x-python"),
    "javascript": (
        {"application/javascript"},
        {("javascript", "application/javascript", True)},
        "text/javascript",
    ),
    "c": ({"text/x-c"}, {("c", "text/x-c", True)}, "text/x-c"),
    "c++": ({"text/x-c++"}, {("cpp", "text/x-c", True)}, "text/x-c++"),
    "csv": ({"text/csv"}, {("csv", "text/csv", True)}, "text/csv"),
    "tsv": (set(), {("tsv", "text/tsv", True)}, "text/tab-separated-values"),
    "svg": ({"image/svg+xml"}, {("svg", "image/svg+xml", True)}, "image/svg+xml"),
    "bmp": ({"image/bmp", "image/x-ms-bmp"}, {("bmp", "image/bmp", False)}, "image/bmp"),
    "ruby": ({"text/x-ruby"}, {("ruby", "application/x-ruby", True)}, "text/x-ruby"),
    "gettext": ({"text/x-po"}, {("po", "text/gettext-translation", True)}, "text/x-po"),
}


@pytest.mark.parametrize(("fast", "learned", "name"), NAMES.values(), ids=NAMES.keys())
def test_each_format_has_one_name_whichever_detector_named_it(
    fast: set[str], learned: set[tuple[str, str | None, bool]], name: str
) -> None:
    names = {canonical(mime) for mime in fast}
    names |= {canonical_for_label(label, mime, text) for label, mime, text in learned}
    assert names == {name}


def test_canonical_names_are_their_own_and_never_an_alias() -> None:
    chosen = {name for name, _ in CANONICAL_NAMES} | set(MAGIKA_LABELS.values())
    aliases = {alias for _, found in CANONICAL_NAMES for alias in found}
    assert chosen.isdisjoint(aliases)
    assert all(canonical(name) == name for name in chosen)
    assert all(name == name.lower() for name in chosen | aliases)


@pytest.mark.parametrize(
    ("mime", "name"),
    [
        ("APPLICATION/X-GZIP", "application/gzip"),
        ("text/x-R", "text/x-r"),
        ("image/png", "image/png"),
    ],
)
def test_names_are_case_insensitive_and_unknown_ones_pass_through(mime: str, name: str) -> None:
    assert canonical(mime) == name


@pytest.mark.parametrize(
    ("is_text", "name"), [(True, "text/plain"), (False, "application/octet-stream")]
)
def test_a_magika_label_without_a_media_type_is_named_by_what_it_holds(
    is_text: bool, name: str
) -> None:
    assert canonical_for_label("solidity", None, is_text) == name


@pytest.mark.parametrize(
    ("mime", "than", "wider"),
    [
        ("text/javascript", "application/json", True),
        ("text/x-c++", "text/x-c", True),
        ("text/x-c", "text/x-c++", False),
        ("application/xml", "image/svg+xml", True),
        ("application/json", "application/ld+json", True),
        ("application/xml", "text/html", False),
        ("image/svg+xml", "application/xml", False),
        ("application/json", "text/javascript", False),
        ("text/markdown", "text/x-python", False),
    ],
)
def test_is_wider_knows_formats_that_contain_others(mime: str, than: str, wider: bool) -> None:
    assert is_wider(mime, than) is wider


def test_media_types_from_clients_and_settings_are_stored_under_chutes_name() -> None:
    assert check_mime_type("Application/X-GZIP") == "application/gzip"
    assert check_mime_pattern("text/xml") == "application/xml"
    assert check_mime_pattern("image/*") == "image/*"
