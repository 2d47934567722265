"""`chute keygen`: a new API key and the digest line for CHUTE_API_KEYS."""

from __future__ import annotations

from typing import Any

from chute.entrypoints.http.keys import keygen


def add_parser(commands: Any) -> None:
    commands.add_parser(
        "keygen",
        help="print a new API key, then its sha256: digest line for CHUTE_API_KEYS",
    )


def print_new_key() -> int:
    """`chute keygen`: a new key on the first line (for the client), its digest on the
    second (for CHUTE_API_KEYS). Reads no settings, so that it works while they are
    being fixed."""
    for line in keygen():
        print(line)
    return 0
