"""The `detection` benchmark's corpus: variants of tests/corpus.py's files, with their truth.

Every variant is still a well-formed file of its format (different sizes, entries,
comments or text), so that a detector is judged on content a user could upload.
"""

from __future__ import annotations

import gzip
import io
import json
import random
import zipfile
from collections.abc import Callable, Iterator

from tests import corpus

OOXML = "application/vnd.openxmlformats-officedocument"
# The right answer for each format, in chute's one name per format (adapters/media_types.py).
TRUTH: dict[str, frozenset[str]] = {
    "pdf": frozenset({"application/pdf"}),
    "png": frozenset({"image/png"}),
    "jpeg": frozenset({"image/jpeg"}),
    "gif": frozenset({"image/gif"}),
    "zip": frozenset({"application/zip"}),
    "docx": frozenset({f"{OOXML}.wordprocessingml.document"}),
    "xlsx": frozenset({f"{OOXML}.spreadsheetml.sheet"}),
    "gzip": frozenset({"application/gzip"}),
    "text": frozenset({"text/plain"}),
    "json": frozenset({"application/json"}),
    "csv": frozenset({"text/csv"}),
    "html": frozenset({"text/html"}),
    "python": frozenset({"text/x-python"}),
}
LINES = corpus.ENGLISH.splitlines(keepends=True)


def _pdf(n: int, rand: random.Random) -> bytes:
    return corpus.pdf() + b"".join(b"%% note %d\n" % i for i in range(n * 7))


def _jpeg(n: int, rand: random.Random) -> bytes:
    comment = f"made by chute bench, variant {n}".encode() * (n % 5 + 1)
    com = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return corpus.jpeg()[:2] + com + corpus.jpeg()[2:]


def _gif(n: int, rand: random.Random) -> bytes:
    data = bytearray(corpus.gif())
    data[6:10] = (n % 200 + 1).to_bytes(2, "little") + (n % 90 + 1).to_bytes(2, "little")
    return bytes(data)


def _zip(n: int, rand: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(n % 4 + 1):
            archive.writestr(f"folder-{n}/part-{i}.txt", "".join(rand.sample(LINES, 3)) * (i + 1))
    return buffer.getvalue()


def _office(build: Callable[[], bytes]) -> Callable[[int, random.Random], bytes]:
    def made(n: int, rand: random.Random) -> bytes:
        return corpus.office_with_media(build(), 1024 * (n % 6) * 32) if n % 2 else build()

    return made


def _text(n: int, rand: random.Random) -> bytes:
    return "".join(rand.choice(LINES) for _ in range(n % 12 + 1)).encode()


def _csv(n: int, rand: random.Random) -> bytes:
    lines = corpus.csv_document().decode().splitlines(keepends=True)
    return "".join(lines[: 3 + n * 3 % 38]).encode()


def _json(n: int, rand: random.Random) -> bytes:
    if n % 3 == 0:
        return json.dumps({"id": n, "items": [{"k": i} for i in range(n)]}).encode()  # compact
    return corpus.large_json() if n % 11 == 10 else corpus.json_document(records=n % 30 + 1)


def _html(n: int, rand: random.Random) -> bytes:
    items = "".join(f'<li><a href="/p/{i}">Page {i}</a></li>\n' for i in range(n))
    return corpus.html().replace(b"</ul>", items.encode() + b"</ul>")


def _python(n: int, rand: random.Random) -> bytes:
    extra = "".join(
        f"\n\ndef helper_{i}(x: int) -> int:\n    return x * {i}\n" for i in range(n % 8)
    )
    return corpus.python_source() + extra.encode()


VARIANTS: dict[str, Callable[[int, random.Random], bytes]] = {
    "pdf": _pdf,
    "png": lambda n, rand: corpus.png(n % 40 + 1, n % 23 + 1),
    "jpeg": _jpeg,
    "gif": _gif,
    "zip": _zip,
    "docx": _office(corpus.docx),
    "xlsx": _office(corpus.xlsx),
    "gzip": lambda n, rand: gzip.compress(_text(n, rand) * (n % 4 + 1), mtime=0),
    "text": _text,
    "json": _json,
    "csv": _csv,
    "html": _html,
    "python": _python,
}


def files(per_format: int, seed: int = 11) -> Iterator[tuple[str, str, bytes]]:
    """(name, format, content) of `per_format` variants of every format."""
    rand = random.Random(seed)
    for kind, make in VARIANTS.items():
        for n in range(per_format):
            yield f"{kind}-{n:03d}", kind, make(n, rand)
