"""API keys: their digests, the constant-time check of a presented key, and `chute keygen`.

A key is configured either as itself or as `sha256:<64 hex digits>`, the SHA-256 of
the key; chute keeps only digests. A presented key is hashed and its digest compared
with every configured digest, with no early exit: all digests have the same length
and every one is compared, so the time taken tells neither which key matched nor how
long the keys are. Nothing here logs, prints or puts a key into an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Protocol

DIGEST_PREFIX = "sha256:"
KEY_PREFIX = "chute_"  # lets secret scanners (and people) recognise a leaked key
# RFC 6750's b64token: what may follow `Bearer ` in an Authorization header.
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


class Secret(Protocol):
    """A value that hides itself in reprs, such as pydantic's `SecretStr`."""

    def get_secret_value(self) -> str: ...


def digest_of(key: str | bytes) -> bytes:
    """The SHA-256 digest of a key (of its UTF-8 bytes when given as text)."""
    data = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(data).digest()


def digest_line(key: str) -> str:
    """`sha256:<hex>`: how `key` may be written in CHUTE_API_KEYS without the key itself."""
    return DIGEST_PREFIX + digest_of(key).hex()


def entry_digest(entry: str, position: int = 1) -> bytes:
    """The digest a CHUTE_API_KEYS entry stands for. `position` (1-based) names the entry
    in the error, which never quotes the entry itself."""
    if entry.startswith(DIGEST_PREFIX):
        hex_digest = entry.removeprefix(DIGEST_PREFIX)
        if not _HEX_DIGEST.fullmatch(hex_digest):
            raise ValueError(
                f"entry {position} starts with {DIGEST_PREFIX} but is not followed by "
                "exactly 64 hexadecimal digits"
            )
        return bytes.fromhex(hex_digest)
    if not TOKEN.fullmatch(entry):
        raise ValueError(
            f"entry {position} is not a usable bearer token: letters, digits and -._~+/ "
            "only (with = at the end), or sha256:<64 hex digits>"
        )
    return digest_of(entry)


def split_entries(text: str) -> list[str]:
    """The entries of a comma-separated list, stripped, the empty ones left out."""
    return [item.strip() for item in text.split(",") if item.strip()]


class KeyRing:
    """The digests of the accepted API keys; empty means the API is open."""

    def __init__(self, digests: Sequence[bytes] = ()) -> None:
        if any(len(digest) != hashlib.sha256().digest_size for digest in digests):
            raise ValueError("every digest must be 32 bytes (SHA-256)")
        self._digests = tuple(digests)

    @classmethod
    def of(cls, entries: str | Iterable[str | Secret]) -> KeyRing:
        """A ring from CHUTE_API_KEYS entries: keys or `sha256:` digests, plain or secret,
        or the whole comma-separated list."""
        if isinstance(entries, str):
            entries = split_entries(entries)
        texts = (e if isinstance(e, str) else e.get_secret_value() for e in entries)
        return cls([entry_digest(text, n) for n, text in enumerate(texts, start=1)])

    @property
    def enabled(self) -> bool:
        """True when at least one key is configured (the API then asks for one)."""
        return bool(self._digests)

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._digests)} digests>)"

    @property
    def digests(self) -> tuple[bytes, ...]:
        return self._digests

    def knows_prefix(self, prefix: bytes) -> bool:
        """True when a configured key's digest starts with `prefix` (a session's label)."""
        found = False
        for configured in self._digests:
            found |= hmac.compare_digest(configured[: len(prefix)], prefix)
        return bool(prefix) and found

    def accepts(self, presented: str | bytes) -> bool:
        """True when `presented` is one of the keys; constant time over the whole ring."""
        digest = digest_of(presented)
        found = False
        for configured in self._digests:  # every one, no early exit
            found |= hmac.compare_digest(digest, configured)
        return found


def new_key() -> str:
    """A new random key: 32 random bytes, URL-safe base64, after the `chute_` prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def keygen() -> tuple[str, str]:
    """`chute keygen`'s two lines: a new key (for the client) and its digest line (for
    CHUTE_API_KEYS)."""
    key = new_key()
    return key, digest_line(key)
