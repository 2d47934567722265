"""One name per format: the media type chute reports, whichever detector named it.

libmagic and Magika often name one format differently (an ELF program is libmagic's
`application/x-pie-executable` or `application/x-sharedlib` and Magika's
`application/x-executable-elf`), so that a `mime_type` filter would find only the jobs
of one detector. Every answer goes through `canonical()` (libmagic's) or
`canonical_for_label()` (Magika's), which map each name either detector gives a format
to one name: the IANA-registered type where there is one, else the name most tools
use (libmagic's `file`, freedesktop's shared-mime-info).

Formats both detectors already name alike under their registered type (PDF, PNG,
JPEG, GIF, WebP, the Office formats, JSON, HTML, CSV, SVG, ...) need no row.
"""

from __future__ import annotations

from chute.domain.media_types import canonical

# Magika labels whose MIME name in Magika's table is missing, shared with another
# format (C++ is `text/x-c`, JSON lines `application/json`) or not the registered one
# (a PE program is `application/x-dosexec`, which libmagic keeps for MS-DOS programs).
# Labels Magika files under `text/plain` (diff, lua, m4 ...) stay plain text: naming
# them would make a claim Magika's table does not make.
MAGIKA_LABELS: dict[str, str] = {
    "cpp": "text/x-c++",
    "jsonl": "application/x-ndjson",
    "sqlite": "application/vnd.sqlite3",
    "pebin": "application/vnd.microsoft.portable-executable",
    "xlsb": "application/vnd.ms-excel.sheet.binary.macroenabled.12",
}
# Formats whose every document is also a document of a wider format, which therefore
# says less about it. (XML and JSON vocabularies, `+xml` and `+json`, are told by
# their suffix.)
_WIDER: dict[str, frozenset[str]] = {
    "application/json": frozenset({"text/javascript"}),  # a JSON text is JavaScript
    # C is all but a subset of C++; libmagic says C++ when it sees what only C++ has.
    "text/x-c": frozenset({"text/x-c++"}),
}


def canonical_for_label(label: str, mime_type: str | None, is_text: bool) -> str:
    """chute's name for a Magika answer: its label, MIME name and whether it is text.

    Magika's table gives no MIME name for a few labels; those are named by what
    they hold (text or bytes) rather than left without a type.
    """
    if label in MAGIKA_LABELS:
        return MAGIKA_LABELS[label]
    if not mime_type:
        return "text/plain" if is_text else "application/octet-stream"
    return canonical(mime_type)


def is_wider(mime_type: str, than: str) -> bool:
    """Whether every document of format `than` is also one of `mime_type`, so that
    naming `mime_type` says less (JavaScript for JSON, C++ for C, XML for SVG)."""
    if mime_type in _WIDER.get(than, ()):
        return True
    suffix = than.partition("/")[2].rpartition("+")[2]
    return "+" in than and mime_type == f"application/{suffix}"
