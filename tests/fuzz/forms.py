"""Upload bodies written byte by byte, hypothesis strategies for them, and what the API
says the server must make of them."""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

from tests import corpus

BOUNDARY = "chute-fuzz-boundary-5e0c"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
TEXT_FIELDS = ("priority", "mode", "detect", "metadata", "queue", "run_after")
CHOICES = {
    "priority": ("low", "normal", "high", "urgent"),
    "mode": ("auto", "fast", "accurate"),
    "detect": ("true", "false"),
    "queue": ("default", "mail.out_2-b"),
    # Times that have passed (due now), whatever the day the tests run.
    "run_after": ("2020-01-01T00:00:00Z", "2021-06-01T12:00:00.5+02:00"),
}
# A queue's name: 1 to 64 of these characters (any other text a fuzzer draws may be one).
QUEUE_NAME = re.compile(r"[a-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Part:
    """One part of a form. The file name goes as `filename="..."` exactly as given (so it
    may break the header), or with `extended` as RFC 5987 `filename*`, which carries any
    text."""

    name: str
    data: bytes
    filename: str | None = None
    extended: bool = False
    content_type: str | None = None

    def render(self) -> bytes:
        disposition = f'form-data; name="{self.name}"'
        if self.filename is not None and self.extended:
            disposition += f"; filename*=utf-8''{quote(self.filename, safe='')}"
        elif self.filename is not None:
            disposition += f'; filename="{self.filename}"'
        headers = [f"Content-Disposition: {disposition}"]
        if self.content_type is not None:
            headers.append(f"Content-Type: {self.content_type}")
        return "".join(f"{line}\r\n" for line in headers).encode() + b"\r\n" + self.data


def multipart(parts: list[Part]) -> bytes:
    delimiter = f"--{BOUNDARY}".encode()
    body = b"".join(delimiter + b"\r\n" + part.render() + b"\r\n" for part in parts)
    return body + delimiter + b"--\r\n"


# -- what the server must make of a form ---------------------------------------------------


def safe_name(filename: str | None) -> str:
    """The documented `safe_name` rule, from its words: the part after the last `/` or `\\`, without
    control characters (Cc) and then leading dots, cut to 255 bytes of UTF-8 on a
    character boundary; `upload.bin` when nothing is left."""
    base = re.split(r"[/\\]", filename or "")[-1]
    base = "".join(c for c in base if unicodedata.category(c) != "Cc").lstrip(".")
    return base.encode()[:255].decode(errors="ignore") or "upload.bin"


def storable(text: str) -> bool:
    """Text holding NUL or an unpaired surrogate is refused (422) wherever a
    client sends it, file names and form fields included."""
    return not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text)


def _plain_json(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return all(_plain_json(k) and _plain_json(item) for k, item in value.items())
    if isinstance(value, list):
        return all(_plain_json(item) for item in value)
    return True


def _field_ok(name: str, data: bytes) -> bool:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return False
    if not storable(text):
        return False
    if name == "queue":
        return QUEUE_NAME.fullmatch(text) is not None
    if name in CHOICES:
        return text in CHOICES[name]
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, dict) and _plain_json(value)  # small: far below 16 KiB


def accepted(parts: list[Part]) -> bool:
    """Whether the server must take this form (its files are small, and any type goes)."""
    files = [part for part in parts if part.name == "file"]
    names = [part.name for part in parts if part.name != "file"]
    return (
        bool(files)
        and all(part.filename is not None for part in files)  # without one it is text
        and all(part.data for part in files)
        and all(storable(part.filename or "") for part in files)
        and all(name in TEXT_FIELDS for name in names)
        and len(set(names)) == len(names)
        and all(_field_ok(part.name, part.data) for part in parts if part.name != "file")
    )


# -- strategies ----------------------------------------------------------------------------

TRICKY = (
    "..", ".", "/", "\\", "../", "..\\", "/etc/passwd", "C:\\temp\\", "\x00", "\x1b", "\x7f",
    "\x85", "\u200b", '"', ";", "%2F", ".hidden", "é", "名", "🙂", " ", "upload.bin",
)  # fmt: skip

filenames = st.one_of(
    st.text(max_size=30),
    st.lists(st.one_of(st.sampled_from(TRICKY), st.text(max_size=6)), max_size=10).map("".join),
    st.text(alphabet="aé名🙂.", min_size=60, max_size=300),  # past 255 bytes of UTF-8
)
contents = st.one_of(st.binary(min_size=1, max_size=1024), st.just(corpus.pdf()))


def _field_values(name: str) -> st.SearchStrategy[bytes]:
    if name in CHOICES:
        valid = st.sampled_from(CHOICES[name])
    else:
        scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
        valid = st.dictionaries(st.text(max_size=5), scalars, max_size=3).map(json.dumps)
    anything = st.text(max_size=12).map(str.encode) | st.binary(max_size=6)
    return valid.map(str.encode) | anything


file_parts = st.builds(
    Part,
    name=st.just("file"),
    data=st.one_of(contents, st.just(b"")),
    filename=st.none() | st.text(max_size=12),
    extended=st.just(True),
    content_type=st.sampled_from([None, "application/pdf", "text/plain; charset=utf-8", "x"]),
)
field_parts = st.sampled_from((*TEXT_FIELDS, "other", "files")).flatmap(
    lambda name: _field_values(name).map(lambda data: Part(name, data))
)


@st.composite
def forms(draw: st.DrawFn) -> list[Part]:
    """Up to four files and five text fields (valid or not, known or not, repeated or
    not), in any order."""
    parts = draw(st.lists(file_parts, max_size=4)) + draw(st.lists(field_parts, max_size=5))
    return list(draw(st.permutations(parts)))
