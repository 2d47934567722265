"""One name per media type format: the name chute stores and filters by.

Detectors, clients and settings may name one format several ways (an ELF program is
`application/x-pie-executable`, `application/x-sharedlib` or `application/x-executable-elf`);
chute keeps one: the IANA-registered type where there is one, else the name most tools
use (libmagic's `file`, freedesktop's shared-mime-info). Every media type chute takes
in (a detector's answer, a client's declared `mime_type`, a `mime_type` filter, an entry
of `CHUTE_ALLOWED_TYPES`) goes through `canonical()`, so that a filter written with any
of a format's names finds every job of that format.
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

_ALIASES = {alias: name for name, aliases in CANONICAL_NAMES for alias in aliases}


def canonical(mime_type: str) -> str:
    """chute's name for the format a detector called `mime_type`, in lower case (media
    types are case-insensitive, and Magika spells R `text/x-R`)."""
    name = mime_type.lower()
    return _ALIASES.get(name, name)
