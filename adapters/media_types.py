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

# (canonical name, other names of the same format that libmagic or Magika give), in
# lower case: names are lower-cased before they are looked up.
CANONICAL_NAMES: tuple[tuple[str, frozenset[str]], ...] = (
    # ELF programs and shared libraries. No registered type; x-executable is libmagic's
    # and freedesktop's name for ELF programs. libmagic tells a position-independent
    # program from a library by a flag it often finds only past the 64 KiB it reads, so
    # /usr/bin's programs come out `x-sharedlib`; Magika says only "elf". (Relocatable
    # objects and core dumps keep libmagic's x-object and x-coredump: not programs.)
    (
        "application/x-executable",
        frozenset(
            {
                "application/x-pie-executable",
                "application/x-sharedlib",
                "application/x-executable-elf",
                "application/x-elf",
            }
        ),
    ),
    ("application/x-mach-binary", frozenset({"application/x-mach-o"})),  # libmagic's name
    ("application/zip", frozenset({"application/x-zip", "application/x-zip-compressed"})),
    ("application/gzip", frozenset({"application/x-gzip"})),  # IANA, RFC 6713
    ("application/x-tar", frozenset({"application/x-gtar", "application/x-ustar"})),
    ("application/vnd.rar", frozenset({"application/x-rar", "application/x-rar-compressed"})),
    ("application/vnd.sqlite3", frozenset({"application/x-sqlite3"})),  # IANA
    ("application/xml", frozenset({"text/xml"})),  # RFC 7303: text/xml is the same type
    ("application/yaml", frozenset({"application/x-yaml", "text/yaml", "text/x-yaml"})),
    ("application/x-ndjson", frozenset({"application/jsonl", "application/x-jsonlines"})),
    ("text/markdown", frozenset({"text/x-markdown"})),  # IANA, RFC 7763
    # RFC 9239 made text/javascript the one name of JavaScript.
    (
        "text/javascript",
        frozenset(
            {
                "application/javascript",
                "application/x-javascript",
                "application/ecmascript",
                "text/ecmascript",
            }
        ),
    ),
    ("text/x-python", frozenset({"text/x-script.python", "text/x-python3"})),
    (
        "text/x-shellscript",
        frozenset({"application/x-shellscript", "application/x-sh", "text/x-sh"}),
    ),
    ("text/x-c", frozenset({"text/x-csrc", "text/x-chdr"})),
    ("text/x-c++", frozenset({"text/x-c++src", "text/x-c++hdr"})),
    ("text/csv", frozenset({"text/x-csv", "text/x-comma-separated-values"})),  # IANA
    ("text/tab-separated-values", frozenset({"text/tsv"})),  # IANA
    ("text/x-ruby", frozenset({"application/x-ruby"})),
    ("text/x-tcl", frozenset({"application/x-tcl", "text/tcl"})),
    ("text/x-diff", frozenset({"text/x-patch"})),
    ("text/x-po", frozenset({"text/gettext-translation", "text/x-gettext-translation"})),
    ("text/x-ocaml", frozenset({"text-ocaml"})),  # sic: a slip in Magika's own table
    ("image/bmp", frozenset({"image/x-ms-bmp", "image/x-bmp"})),  # IANA
    ("image/vnd.microsoft.icon", frozenset({"image/x-icon"})),  # IANA
)

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

_ALIASES = {alias: name for name, aliases in CANONICAL_NAMES for alias in aliases}


def canonical(mime_type: str) -> str:
    """chute's name for the format a detector called `mime_type`, in lower case (media
    types are case-insensitive, and Magika spells R `text/x-R`)."""
    name = mime_type.lower()
    return _ALIASES.get(name, name)


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
