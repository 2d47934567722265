"""Media types: every job and detection stored under one name per format.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Written by hand, like the revisions before it, so that it never changes when the
application code does: the names below are those chute folded into one per format when
this revision was written (domain/media_types.py then). Rows stored earlier under
another name of a format (libmagic's `application/x-pie-executable`, Magika's
`application/x-executable-elf`, ...) take chute's name, so that a `mime_type` filter
finds them with the rows stored since. A downgrade keeps the new names: they are valid
media types, and the old ones cannot be told back apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# {other name: chute's name}
RENAMED = {
    "application/ecmascript": "text/javascript",
    "application/javascript": "text/javascript",
    "application/jsonl": "application/x-ndjson",
    "application/x-elf": "application/x-executable",
    "application/x-executable-elf": "application/x-executable",
    "application/x-gtar": "application/x-tar",
    "application/x-gzip": "application/gzip",
    "application/x-javascript": "text/javascript",
    "application/x-jsonlines": "application/x-ndjson",
    "application/x-mach-o": "application/x-mach-binary",
    "application/x-pie-executable": "application/x-executable",
    "application/x-rar": "application/vnd.rar",
    "application/x-rar-compressed": "application/vnd.rar",
    "application/x-ruby": "text/x-ruby",
    "application/x-sh": "text/x-shellscript",
    "application/x-sharedlib": "application/x-executable",
    "application/x-shellscript": "text/x-shellscript",
    "application/x-sqlite3": "application/vnd.sqlite3",
    "application/x-tcl": "text/x-tcl",
    "application/x-ustar": "application/x-tar",
    "application/x-yaml": "application/yaml",
    "application/x-zip": "application/zip",
    "application/x-zip-compressed": "application/zip",
    "image/x-bmp": "image/bmp",
    "image/x-icon": "image/vnd.microsoft.icon",
    "image/x-ms-bmp": "image/bmp",
    "text-ocaml": "text/x-ocaml",
    "text/ecmascript": "text/javascript",
    "text/gettext-translation": "text/x-po",
    "text/tcl": "text/x-tcl",
    "text/tsv": "text/tab-separated-values",
    "text/x-c++hdr": "text/x-c++",
    "text/x-c++src": "text/x-c++",
    "text/x-chdr": "text/x-c",
    "text/x-comma-separated-values": "text/csv",
    "text/x-csrc": "text/x-c",
    "text/x-csv": "text/csv",
    "text/x-gettext-translation": "text/x-po",
    "text/x-markdown": "text/markdown",
    "text/x-patch": "text/x-diff",
    "text/x-python3": "text/x-python",
    "text/x-script.python": "text/x-python",
    "text/x-sh": "text/x-shellscript",
    "text/x-yaml": "application/yaml",
    "text/xml": "application/xml",
    "text/yaml": "application/yaml",
}


def upgrade() -> None:
    for table in ("jobs", "detection_results"):
        for old, new in RENAMED.items():
            op.execute(
                sa.text(f"UPDATE {table} SET mime_type = :new WHERE mime_type = :old").bindparams(
                    old=old, new=new
                )
            )


def downgrade() -> None:
    pass
