"""The detectors on a small corpus of real files built in memory."""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING

import pytest
from chute.adapters.detection import AutoDetector, LibmagicDetector, MagikaDetector
from chute.adapters.media_types import canonical_for_label
from chute.adapters.storage.local import HEAD_SIZE, ContentDigest
from chute.application.ports import ContentDetector, ContentSample, TypeGuess

from tests import corpus
from tests.machine_corpus import read_sample

if TYPE_CHECKING:
    from magika import Magika

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# What each detector really answers for each corpus file, in chute's names (one per
# format). libmagic names every binary format, CSV, JSON and HTML by their signatures,
# but Python source without a shebang and YAML are only text to it, and a README with
# a Python example is a Python script; Magika names all of them.
LIBMAGIC = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "zip": "application/zip",
    "docx": DOCX,
    "xlsx": XLSX,
    "gzip": "application/gzip",
    "text": "text/plain",
    "json": "application/json",
    "csv": "text/csv",
    "html": "text/html",
    "python": "text/plain",
    "tar": "application/x-tar",
    "xml": "application/xml",
    "yaml": "text/plain",
    "shell": "text/x-shellscript",
    "python_script": "text/x-python",
    "javascript": "text/javascript",
    "svg": "image/svg+xml",
    "markdown": "text/x-python",
}
MAGIKA = LIBMAGIC | {
    "python": "text/x-python",
    "yaml": "application/yaml",
    "markdown": "text/markdown",
}
# The formats both detectors name, and the one name chute gives each (from libmagic:
# application/x-sharedlib, application/x-tar, text/xml, application/javascript,
# text/x-script.python ...; from Magika: application/x-executable-elf, text/xml,
# application/javascript ...).
ONE_NAME = {
    "elf": "application/x-executable",
    "gzip": "application/gzip",
    "zip": "application/zip",
    "tar": "application/x-tar",
    "docx": DOCX,
    "json": "application/json",
    "xml": "application/xml",
    "csv": "text/csv",
    "html": "text/html",
    "svg": "image/svg+xml",
    "shell": "text/x-shellscript",
    "python_script": "text/x-python",
    "javascript": "text/javascript",
}


def sample(data: bytes) -> ContentSample:
    """The sample a file store would take of this content."""
    return ContentDigest().update(data).sample()


def sample_of(name: str) -> ContentSample:
    """A corpus file's sample; "elf" is the program running the tests."""
    if name == "elf":
        found = read_sample(os.path.realpath(sys.executable))
        assert found is not None
        return found
    return sample(corpus.CORPUS[name]())


@pytest.fixture(scope="module")
def libmagic() -> LibmagicDetector:
    return LibmagicDetector()


@pytest.fixture(scope="module")
def magika() -> MagikaDetector:
    return MagikaDetector()


class Recording(ContentDetector):
    """Answers a fixed guess and counts how often it was asked."""

    def __init__(self, guess: TypeGuess) -> None:
        self.guess, self.calls = guess, 0

    async def detect(self, sample: ContentSample) -> TypeGuess:
        self.calls += 1
        return self.guess


# -- libmagic ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "mime"), LIBMAGIC.items())
async def test_libmagic_names_the_corpus(libmagic: LibmagicDetector, name: str, mime: str) -> None:
    guess = await libmagic.detect(sample(corpus.CORPUS[name]()))
    assert (guess.mime_type, guess.detector) == (mime, "libmagic")


@pytest.mark.parametrize(
    ("name", "label", "group", "confidence"),
    [
        ("pdf", "pdf", "document", 1.0),
        ("png", "png", "image", 1.0),
        ("zip", "zip", "archive", 1.0),
        ("docx", "docx", "document", 1.0),
        ("csv", "csv", "code", 1.0),
        ("text", "txt", "text", 0.5),
    ],
)
async def test_libmagic_labels_and_groups_like_magika(
    libmagic: LibmagicDetector, name: str, label: str, group: str, confidence: float
) -> None:
    guess = await libmagic.detect(sample(corpus.CORPUS[name]()))
    assert (guess.label, guess.group, guess.confidence) == (label, group, confidence)


# Random bytes, not a byte ramp: 00 01 02 ... reads to libmagic as a TGA image header.
@pytest.mark.parametrize("data", [b"", random.Random(2).randbytes(5000)])
async def test_libmagic_calls_what_it_cannot_name_octet_stream(
    libmagic: LibmagicDetector, data: bytes
) -> None:
    guess = await libmagic.detect(sample(data))
    assert guess == TypeGuess("application/octet-stream", "unknown", "unknown", 0.0, "libmagic")


@pytest.mark.parametrize(("office", "mime"), [(corpus.docx, DOCX), (corpus.xlsx, XLSX)])
async def test_libmagic_names_office_files_from_their_head_only(
    libmagic: LibmagicDetector, office: Callable[[], bytes], mime: str
) -> None:
    data = corpus.office_with_media(office())
    assert len(data) > 4 * HEAD_SIZE
    assert (await libmagic.detect(sample(data))).mime_type == mime


async def test_libmagic_serves_concurrent_calls(libmagic: LibmagicDetector) -> None:
    names = list(LIBMAGIC) * 4
    guesses = await asyncio.gather(*(libmagic.detect(sample(corpus.CORPUS[n]())) for n in names))
    assert [g.mime_type for g in guesses] == [LIBMAGIC[n] for n in names]


# -- Magika --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "mime"), MAGIKA.items())
async def test_magika_names_the_corpus(magika: MagikaDetector, name: str, mime: str) -> None:
    guess = await magika.detect(sample(corpus.CORPUS[name]()))
    assert (guess.mime_type, guess.detector) == (mime, "magika")
    assert 0.5 < guess.confidence <= 1.0


async def test_magika_reports_its_label_and_group(magika: MagikaDetector) -> None:
    guess = await magika.detect(sample(corpus.python_source()))
    assert (guess.label, guess.group) == ("python", "code")


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (corpus.python_source() * 300, "text/x-python"),
        (corpus.large_json(), "application/json"),
        (corpus.office_with_media(corpus.docx()), DOCX),
    ],
)
async def test_magika_names_large_files_from_head_and_tail(
    magika: MagikaDetector, data: bytes, mime: str
) -> None:
    assert len(data) > HEAD_SIZE + 8 * 1024
    assert (await magika.detect(sample(data))).mime_type == mime


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (b'{"id": 7, "items": [{"k": 0}, {"k": 1}], "ok": true}', "application/json"),
        (
            b"".join(b'{"id": %d, "name": "item-%d"}\n' % (n, n) for n in range(40)),
            "application/x-ndjson",
        ),
    ],
)
async def test_magika_tells_one_line_json_from_json_lines(
    magika: MagikaDetector, data: bytes, mime: str
) -> None:
    assert (await magika.detect(sample(data))).mime_type == mime


async def test_magika_calls_empty_content_octet_stream(magika: MagikaDetector) -> None:
    guess = await magika.detect(sample(b""))
    assert (guess.mime_type, guess.label, guess.group) == (
        "application/octet-stream",
        "unknown",
        "unknown",
    )


async def test_magika_loads_its_model_once_for_concurrent_first_calls() -> None:
    loads: list[int] = []
    lock = threading.Lock()

    def load() -> Magika:
        from magika import Magika

        with lock:
            loads.append(threading.get_ident())
        time.sleep(0.2)  # hold the race window open while the other calls arrive
        return Magika()

    detector = MagikaDetector(load_model=load)
    guesses = await asyncio.gather(
        *(detector.detect(sample(corpus.csv_document())) for _ in range(20))
    )
    assert len(loads) == 1
    assert {g.mime_type for g in guesses} == {"text/csv"}


# -- one name per format --------------------------------------------------------------


@pytest.mark.parametrize(("name", "mime"), ONE_NAME.items())
async def test_both_detectors_give_a_format_one_name(
    libmagic: LibmagicDetector, magika: MagikaDetector, name: str, mime: str
) -> None:
    content = sample_of(name)
    fast, learned = await libmagic.detect(content), await magika.detect(content)
    assert (fast.mime_type, learned.mime_type) == (mime, mime)
    assert (fast.label, fast.group) == (learned.label, learned.group)


def test_every_answer_magika_can_give_has_a_media_type() -> None:
    from magika import Magika

    table = json.loads(files("magika").joinpath("config/content_types_kb.min.json").read_text())
    for label in map(str, Magika().get_output_content_types()):
        info = table[label]
        mime = canonical_for_label(label, info["mime_type"], info["is_text"])
        assert re.fullmatch(r"[a-z]+/[a-z0-9][a-z0-9.+-]*", mime), (label, mime)


# -- auto ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto(libmagic: LibmagicDetector, magika: MagikaDetector) -> AutoDetector:
    return AutoDetector(libmagic, magika)


@pytest.mark.parametrize("name", ["python", "yaml"])
async def test_auto_asks_magika_when_libmagic_only_sees_text(auto: AutoDetector, name: str) -> None:
    guess = await auto.detect(sample(corpus.CORPUS[name]()))
    assert (guess.mime_type, guess.detector) == (MAGIKA[name], "magika")


async def test_auto_asks_magika_about_text_libmagic_names(
    libmagic: LibmagicDetector, auto: AutoDetector
) -> None:
    # A README whose Python example libmagic takes for a Python script.
    content = sample(corpus.markdown_with_python())
    assert (await libmagic.detect(content)).mime_type == "text/x-python"
    guess = await auto.detect(content)
    assert (guess.mime_type, guess.detector) == ("text/markdown", "magika")


async def test_auto_asks_magika_for_json_too_large_for_libmagic(
    libmagic: LibmagicDetector, auto: AutoDetector
) -> None:
    # libmagic cannot validate JSON cut at 64 KiB and falls back to text/plain.
    content = sample(corpus.large_json())
    assert (await libmagic.detect(content)).mime_type == "text/plain"
    guess = await auto.detect(content)
    assert (guess.mime_type, guess.detector) == ("application/json", "magika")


async def test_auto_keeps_libmagic_when_magika_is_unsure(
    libmagic: LibmagicDetector, magika: MagikaDetector, auto: AutoDetector
) -> None:
    # Magika's best guess is Markdown, below its own threshold for Markdown: it says txt.
    content = sample(b"# Usage\n\nimport os\nfrom x import y\n\nSee *docs*.\n")
    assert (await magika.detect(content)).mime_type == "text/plain"
    expected = await libmagic.detect(content)
    assert expected.mime_type == "text/x-python"
    assert await auto.detect(content) == expected


@pytest.mark.parametrize("name", ["pdf", "png", "zip", "docx", "gzip", "tar", "svg", "elf"])
async def test_auto_keeps_what_libmagic_names_by_signature_without_asking_again(
    libmagic: LibmagicDetector, name: str
) -> None:
    second = Recording(TypeGuess("text/html", "html", "code", 1.0, "magika"))
    guess = await AutoDetector(libmagic, second).detect(sample_of(name))
    assert (guess.mime_type, guess.detector) == (ONE_NAME.get(name, LIBMAGIC.get(name)), "libmagic")
    assert second.calls == 0


@pytest.mark.parametrize(
    "mime",
    [
        "text/plain",
        "text/csv",
        "text/x-python",
        "text/html",
        "application/json",
        "application/xml",
        "application/rss+xml",
        "application/octet-stream",
    ],
)
async def test_auto_asks_the_learned_detector_about_text_and_unnamed_bytes(mime: str) -> None:
    first = Recording(TypeGuess(mime, "any", "code", 1.0, "libmagic"))
    second = Recording(TypeGuess("text/markdown", "markdown", "text", 0.9, "magika"))
    assert await AutoDetector(first, second).detect(sample(b"# Notes\n")) == second.guess


async def test_auto_keeps_libmagic_when_magika_is_no_more_specific(auto: AutoDetector) -> None:
    guess = await auto.detect(sample(corpus.text()))
    assert guess == TypeGuess("text/plain", "txt", "text", 0.5, "libmagic")


@pytest.mark.parametrize(
    "answer",
    [
        TypeGuess("application/octet-stream", "unknown", "unknown", 0.9, "magika"),
        TypeGuess("text/plain", "ini", "text", 0.9, "magika"),
        TypeGuess("application/x-thing", "unknown", "unknown", 0.9, "magika"),
    ],
)
async def test_auto_ignores_a_second_answer_that_names_nothing(answer: TypeGuess) -> None:
    first = Recording(TypeGuess("text/plain", "txt", "text", 0.5, "libmagic"))
    second = Recording(answer)
    assert await AutoDetector(first, second).detect(sample(b"a=1\n")) == first.guess
    assert second.calls == 1


@pytest.mark.parametrize(
    ("named", "wider"),
    [
        (TypeGuess("application/json", "json", "code", 1.0, "libmagic"), "text/javascript"),
        (TypeGuess("application/rss+xml", "rss", "code", 1.0, "libmagic"), "application/xml"),
        (TypeGuess("text/x-c", "c", "code", 1.0, "libmagic"), "text/x-c++"),
    ],
)
async def test_auto_keeps_libmagic_when_magika_names_a_wider_format(
    named: TypeGuess, wider: str
) -> None:
    second = Recording(TypeGuess(wider, "wider", "code", 0.9, "magika"))
    assert await AutoDetector(Recording(named), second).detect(sample(b"[1]")) == named
