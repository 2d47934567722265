"""API keys: digests, the constant-time check, keygen's output, and keys kept out of reprs."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from chute.entrypoints.http import keys as keys_module
from chute.entrypoints.http.keys import KeyRing, digest_line, entry_digest, keygen, split_entries
from chute.entrypoints.settings import Settings
from pydantic import SecretStr, ValidationError

KEYS = ["alpha-key-1", "bravo-key-2", "charlie-key-3", "delta-key-4", "echo-key-5"]


def test_a_plain_entry_stands_for_the_digest_of_the_key() -> None:
    assert entry_digest("s3cret") == hashlib.sha256(b"s3cret").digest()


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_a_sha256_entry_is_read_as_the_digest_in_either_case(case: type[str]) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()
    assert entry_digest("sha256:" + case(digest)) == bytes.fromhex(digest)


@pytest.mark.parametrize(
    "entry",
    [
        "sha256:",
        "sha256:abc123",
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "g" * 64,
        "sha256: " + "a" * 64,
        "has space",
        'quote"d',
        "comma;semicolon",
        "ünïcode",
    ],
)
def test_a_bad_entry_is_refused_without_being_quoted(entry: str) -> None:
    with pytest.raises(ValueError, match="entry 3") as refused:
        entry_digest(entry, position=3)
    secret_part = entry.removeprefix("sha256:")
    assert not secret_part or secret_part not in str(refused.value)


def test_entries_are_split_on_commas_and_stripped() -> None:
    assert split_entries(" a , ,b,, c ") == ["a", "b", "c"]
    assert split_entries("") == []


def test_the_ring_accepts_each_key_whether_given_plain_secret_or_as_a_digest() -> None:
    ring = KeyRing.of([KEYS[0], SecretStr(KEYS[1]), digest_line(KEYS[2])])
    assert len(ring) == 3 and ring.enabled
    assert all(ring.accepts(key) for key in KEYS[:3])
    assert ring.accepts(KEYS[1].encode())
    assert not ring.accepts(KEYS[3])
    assert not ring.accepts("")
    assert not ring.accepts(KEYS[0] + " ")


def test_the_ring_reads_a_whole_comma_separated_list() -> None:
    ring = KeyRing.of(f"{KEYS[0]}, {digest_line(KEYS[1])}")
    assert ring.accepts(KEYS[0]) and ring.accepts(KEYS[1]) and len(ring) == 2


def test_an_empty_ring_is_the_open_api_and_accepts_nothing() -> None:
    ring = KeyRing.of([])
    assert not ring.enabled
    assert not ring.accepts("anything")


@pytest.mark.parametrize("presented", [KEYS[0], KEYS[2], KEYS[4], "wrong", "x" * 10_000])
def test_every_digest_is_compared_whatever_the_key(
    presented: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No early exit: a match on the first key compares as many digests, of the same
    length, as a wrong key of any length."""
    calls: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return compare(a, b)

    ring = KeyRing.of(KEYS)
    monkeypatch.setattr(keys_module.hmac, "compare_digest", counting)
    ring.accepts(presented)
    assert calls == [(32, 32)] * len(KEYS)


def test_keygen_prints_a_prefixed_random_key_and_its_digest_line() -> None:
    key, line = keygen()
    assert re.fullmatch(r"chute_[A-Za-z0-9_-]{43}", key)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", line)
    assert line == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    assert KeyRing.of([line]).accepts(key)
    assert keygen()[0] != key


def test_the_ring_and_the_settings_never_show_a_key() -> None:
    ring = KeyRing.of([KEYS[0]])
    settings = Settings(api_keys=f"{KEYS[0]},{KEYS[1]}")
    for text in (repr(ring), str(ring), repr(settings), str(settings)):
        assert KEYS[0] not in text and KEYS[1] not in text
    assert len(settings.api_keys) == 2


def test_the_settings_read_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHUTE_API_KEYS", f" {KEYS[0]} ,{digest_line(KEYS[1])},")
    ring = KeyRing.of(Settings().api_keys)
    assert ring.accepts(KEYS[0]) and ring.accepts(KEYS[1]) and len(ring) == 2
    monkeypatch.setenv("CHUTE_API_KEYS", "")
    assert Settings().api_keys == ()


def test_a_bad_digest_stops_the_settings_without_showing_any_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHUTE_API_KEYS", f"{KEYS[0]},sha256:{KEYS[1]}")
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "api_keys" in message and "entry 2" in message and "64 hexadecimal" in message
    assert KEYS[0] not in message and KEYS[1] not in message
