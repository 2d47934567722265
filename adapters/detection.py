"""Content detectors: libmagic's signatures, Google's Magika model, and `auto` (both).

Every answer is in chute's name for the format (domain/media_types.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import magic
from chute.adapters.media_types import canonical_for_label, is_wider
from chute.application.ports import ContentDetector, ContentSample, TypeGuess
from chute.domain.media_types import canonical

if TYPE_CHECKING:
    from magika import Magika
    from magika.types import MagikaResult

OCTET_STREAM = "application/octet-stream"
# What libmagic answers for nothing to look at; chute calls that opaque bytes.
_NOTHING = frozenset({"", "application/x-empty", "inode/x-empty"})

# Magika's label of each type libmagic names, where the subtype alone does not give it.
_LABELS = {
    OCTET_STREAM: "unknown",
    "text/plain": "txt",
    "image/jpeg": "jpeg",
    "image/svg+xml": "svg",
    "application/x-bzip2": "bzip",
    "application/x-7z-compressed": "sevenzip",
    "application/x-executable": "elf",
    "application/vnd.microsoft.portable-executable": "pebin",
    "application/x-mach-binary": "macho",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.sqlite3": "sqlite",
    "application/vnd.rar": "rar",
    "application/x-ndjson": "jsonl",
    "text/x-python": "python",
    "text/x-shellscript": "shell",
    "text/x-c++": "cpp",
    "text/javascript": "javascript",
    "text/tab-separated-values": "tsv",
    "audio/mpeg": "mp3",
}
_GROUP_OF_TYPE = {"image": "image", "audio": "audio", "video": "video", "font": "font"}
_DOCUMENTS = frozenset(
    {"pdf", "doc", "xls", "ppt", "docx", "xlsx", "pptx", "rtf", "epub", "postscript"}
)
_ARCHIVES = frozenset(
    {"zip", "gzip", "bzip", "xz", "zstd", "tar", "sevenzip", "rar", "java-archive"}
)
_EXECUTABLES = frozenset({"elf", "pebin", "mach-o"})
_CODE = frozenset(
    {"json", "jsonl", "csv", "tsv", "html", "xml", "yaml", "javascript", "python", "shell", "c"}
    | {"cpp"}
)


def _label(mime: str) -> str:
    if mime in _LABELS:
        return _LABELS[mime]
    subtype = mime.partition("/")[2].split("+")[0]
    for prefix in ("x-", "vnd."):
        subtype = subtype.removeprefix(prefix)
    return subtype or "unknown"


def _group(mime: str, label: str) -> str:
    """Magika's group names, so that both detectors file a type under the same group."""
    top = mime.partition("/")[0]
    if mime == OCTET_STREAM:
        return "unknown"
    if top in _GROUP_OF_TYPE:
        return _GROUP_OF_TYPE[top]
    for group, labels in (
        ("document", _DOCUMENTS),
        ("archive", _ARCHIVES),
        ("executable", _EXECUTABLES),
        ("code", _CODE),
    ):
        if label in labels:
            return group
    return "text" if top == "text" else "application"


def libmagic_guess(mime: str) -> TypeGuess:
    """The guess for a type named by libmagic, its quirks normalised, in chute's name."""
    mime = canonical(mime.split(";", 1)[0].strip().lower())
    if mime in _NOTHING or mime.startswith("inode/"):
        mime = OCTET_STREAM
    confidence = {OCTET_STREAM: 0.0, "text/plain": 0.5}.get(mime, 1.0)
    label = _label(mime)
    return TypeGuess(mime, label, _group(mime, label), confidence, detector="libmagic")


class LibmagicDetector(ContentDetector):
    """`fast` mode: libmagic's signatures and text checks on the first 64 KiB."""

    def __init__(self) -> None:
        self._magic = magic.Magic(mime=True)
        # One libmagic handle is not safe to share between threads at the same time.
        self._lock = threading.Lock()

    async def detect(self, sample: ContentSample) -> TypeGuess:
        return libmagic_guess(await asyncio.to_thread(self._identify, sample.head))

    def _identify(self, head: bytes) -> str:
        with self._lock:
            try:
                return str(self._magic.from_buffer(head))
            except magic.MagicException:
                # libmagic gave up on these bytes: that is "cannot name it", not a fault.
                return OCTET_STREAM


def _load_magika() -> Magika:
    # Imported here: magika pulls in onnxruntime, too heavy to load when unused.
    from magika import Magika

    return Magika()


def magika_guess(result: MagikaResult) -> TypeGuess:
    """The guess for a Magika result, in chute's name; 'empty' and 'undefined' become
    opaque bytes. Below Magika's own threshold for a type its output is already only
    'txt' or 'unknown' (its high-confidence mode, the default)."""
    # `output` may only be read from a result that is ok.
    if not result.ok or str(result.output.label) in {"empty", "undefined"}:
        return TypeGuess(OCTET_STREAM, "unknown", "unknown", 0.0, detector="magika")
    output = result.output
    label = str(output.label)
    mime = canonical_for_label(label, output.mime_type, output.is_text)
    return TypeGuess(mime, label, output.group, result.score, "magika")


class MagikaDetector(ContentDetector):
    """`accurate` mode: the Magika model, loaded once on first use, on both ends of the content.

    `load_model` makes the `Magika` instance (the packaged model by default); it is
    called once, in a worker thread, however many first calls arrive together.
    """

    def __init__(self, load_model: Callable[[], Magika] = _load_magika) -> None:
        self._load_model = load_model
        self._model: Magika | None = None
        self._lock = threading.Lock()

    async def detect(self, sample: ContentSample) -> TypeGuess:
        # Magika reads a few KiB at each end of its input; the sample's head and tail
        # are the content's true start and end (and the whole content when it is small).
        return await asyncio.to_thread(self._identify, sample.head + sample.tail)

    def _identify(self, content: bytes) -> TypeGuess:
        guess = magika_guess(self._get_model().identify_bytes(content))
        if guess.label == "jsonl" and b"\n" not in content.strip():
            # Magika says JSON lines for any one-line JSON; one line is one JSON document.
            return replace(guess, mime_type="application/json", label="json")
        return guess

    def _get_model(self) -> Magika:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load_model()
        return self._model


_NO_ANSWER = frozenset({"unknown", "undefined"})
# libmagic's answers for text outside text/*: formats it names by reading the text
# (a parser, the words), not by a binary signature.
_TEXT_APPLICATION = frozenset(
    {"application/json", "application/x-ndjson", "application/xml", "application/yaml"}
    | {"application/toml", "application/x-sql"}
)


def is_text_answer(mime: str) -> bool:
    """Whether libmagic named this type from text (words, a `#!` line, a parser) rather
    than from a binary signature: text/*, JSON, XML and the XML and JSON vocabularies
    of `application/*`. (SVG is an image, named by its root element: as sure a sign
    as a signature.)"""
    top, _, subtype = mime.partition("/")
    if top == "text" or mime in _TEXT_APPLICATION:
        return True
    return top == "application" and subtype.endswith(("+xml", "+json"))


class AutoDetector(ContentDetector):
    """`auto` mode: `first` (libmagic) for what its signatures name, `second` (the
    learned detector) for text and for what `first` cannot name.

    `first` answers alone when it names a format by its signature (PDF, images,
    archives, office files, executables). When it answers text (`is_text_answer`) or
    only opaque bytes, `second` is asked and its answer taken, unless it is no more
    specific: plain text, opaque bytes or no answer (which is also what Magika says
    when it is unsure, below its own threshold), or a wider format than `first`
    named (JavaScript for JSON, C++ for C). Then `first`'s answer stands. The guess
    returned is the answering detector's own, so that its `detector` field
    ("libmagic" or "magika") names who answered.
    """

    def __init__(self, first: ContentDetector, second: ContentDetector) -> None:
        self._first, self._second = first, second

    async def detect(self, sample: ContentSample) -> TypeGuess:
        first = await self._first.detect(sample)
        if first.mime_type != OCTET_STREAM and not is_text_answer(first.mime_type):
            return first
        second = await self._second.detect(sample)
        if (
            second.is_generic
            or second.label in _NO_ANSWER
            or is_wider(second.mime_type, first.mime_type)
        ):
            return first
        return second
