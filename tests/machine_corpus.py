"""A detection corpus no one here wrote: files this machine's Debian and Python packages installed.

Each file is labelled by where it comes from (its name in a package area, or for the
programs in /usr/bin its first bytes), never by a detector. The corpus is the same on
every run on the same machine: candidates are sorted, each class draws from them with
its own fixed seed, and at most `PER_CLASS` files are taken per class. Each file is
read as chute's file store samples it (the first 64 KiB and the last 8 KiB after
them), so that no read is larger than that.

A class with fewer files on this machine than `PER_CLASS` is kept with what was
found and named by `MachineCorpus.shortfalls()`.
"""

from __future__ import annotations

import os
import random
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chute.adapters.storage.local import HEAD_SIZE, TAIL_SIZE
from chute.application.ports import ContentSample

PER_CLASS = 15
SEED = 10
# Smaller files (an empty __init__.py, a one-line stub) hold too little to be told
# apart by anyone, and would measure only how each detector breaks ties.
MIN_SIZE = 256

PROGRAMS = ("/usr/bin", "/usr/sbin")
DOCS = "/usr/share/doc"
_SHELLS = (b"sh", b"bash", b"dash")

# What counts as right for each class, in chute's canonical names (one name per
# format, adapters/media_types.py): a detector is right when it names the format the
# file's origin says it is, and wrong when it says only "text" or "bytes". XML is
# also right under any type whose `+xml` suffix says it is XML (RFC 6839): an .xml
# file may well be RDF or SVG, and naming that is more precise, not wrong.
ACCEPTED: dict[str, frozenset[str]] = {
    "python": frozenset({"text/x-python"}),
    "c": frozenset({"text/x-c"}),
    "markdown": frozenset({"text/markdown"}),
    "json": frozenset({"application/json"}),
    "yaml": frozenset({"application/yaml"}),
    "html": frozenset({"text/html"}),
    "xml": frozenset({"application/xml"}),
    "shell": frozenset({"text/x-shellscript"}),
    "text": frozenset({"text/plain"}),
    "png": frozenset({"image/png"}),
    "svg": frozenset({"image/svg+xml"}),
    "gzip": frozenset({"application/gzip"}),
    "pdf": frozenset({"application/pdf"}),
    "elf": frozenset({"application/x-executable"}),
}


def is_correct(label: str, mime_type: str) -> bool:
    """Whether `mime_type` is a right answer for a file of class `label`."""
    return mime_type in ACCEPTED[label] or (label == "xml" and mime_type.endswith("+xml"))


def _shell_script(head: bytes) -> bool:
    """`#!/bin/sh`, `#! /bin/bash -e`, `#!/usr/bin/env dash` ..."""
    if not head.startswith(b"#!"):
        return False
    words = head[2:].split(b"\n", 1)[0].split()
    if words[:1] == [b"/usr/bin/env"]:
        words = words[1:]
    return bool(words) and words[0].rsplit(b"/", 1)[-1] in _SHELLS


def _elf(head: bytes) -> bool:
    return head.startswith(b"\x7fELF")


@dataclass(frozen=True)
class Origin:
    """Where the files of one class come from: a name suffix, or a whole name (any name
    when neither is given), under some folders (anywhere walked when none), and for
    programs a check of their first bytes."""

    suffixes: tuple[str, ...] = ()
    name: str = ""
    under: tuple[str, ...] = ()
    starts: Callable[[bytes], bool] | None = None

    def covers(self, folder: str) -> bool:
        return not self.under or any(
            folder == place or folder.startswith(f"{place}/") for place in self.under
        )


# Programs are the files in /usr/bin and /usr/sbin, told apart by their first bytes: an
# ELF header or a shell's `#!` line.
ORIGINS: dict[str, tuple[Origin, ...]] = {
    "python": (Origin((".py",)),),
    "c": (Origin((".c",)),),
    "markdown": (Origin((".md",)),),
    "json": (Origin((".json",)),),
    "yaml": (Origin((".yaml", ".yml")),),
    "html": (Origin((".html", ".htm")),),
    "xml": (Origin((".xml",)),),
    "shell": (Origin((".sh",)), Origin(under=PROGRAMS, starts=_shell_script)),
    "text": (
        Origin(name="copyright", under=(DOCS,)),
        Origin(under=("/usr/share/common-licenses",)),
    ),
    "png": (Origin((".png",)),),
    "svg": (Origin((".svg",)),),
    "gzip": (Origin((".gz",), under=(DOCS,)),),
    "pdf": (Origin((".pdf",)),),
    "elf": (Origin(under=PROGRAMS, starts=_elf),),
}


def roots() -> list[Path]:
    """The folders walked: Debian's package areas and the installation of the Python
    running this (its standard library and site-packages). Not the virtual environment
    it may run in: its packages are chute's own dependencies, which change with
    pyproject.toml (and `make bench` adds some), and the corpus should not."""
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    paths = sysconfig.get_paths(vars=base | {"installed_" + k: v for k, v in base.items()})
    found = [*PROGRAMS, "/usr/include", "/usr/lib", "/usr/share"]
    found += [paths[key] for key in ("stdlib", "purelib", "platlib", "include")]
    resolved = sorted({Path(p).resolve() for p in found if Path(p).is_dir()})
    # A root inside another is walked once, as part of the outer one.
    return [r for r in resolved if not any(o != r and o in r.parents for o in resolved)]


def _folders(root: str) -> Iterator[tuple[str, list[str]]]:
    """Every folder under `root` with the names of its files. Symbolic links are not
    followed: they repeat files found elsewhere or lead out of the package areas."""
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        folders += sorted(e.path for e in entries if e.is_dir(follow_symlinks=False))
        yield folder, [e.name for e in entries if e.is_file(follow_symlinks=False)]


@dataclass(frozen=True)
class MachineFile:
    """One file of the corpus: where it is, its class, and the sample chute would take."""

    path: str
    label: str
    sample: ContentSample


@dataclass(frozen=True)
class MachineCorpus:
    """The files taken, and how many candidates each class had."""

    files: tuple[MachineFile, ...]
    candidates: dict[str, int] = field(default_factory=dict)

    def taken(self, label: str) -> int:
        return sum(1 for f in self.files if f.label == label)

    def shortfalls(self) -> list[str]:
        """One line per class this machine could not fill, empty when all are full."""
        return [
            f"{label}: {self.taken(label)} of {PER_CLASS} ({self.candidates.get(label, 0)} "
            f"candidate files, {_where(label)})"
            for label in ORIGINS
            if self.taken(label) < PER_CLASS
        ]

    def describe(self) -> str:
        filled = sum(1 for label in ORIGINS if self.taken(label) == PER_CLASS)
        text = f"{len(self.files)} files of this machine, {filled} of {len(ORIGINS)} classes full"
        short = self.shortfalls()
        return text + ("; could not fill " + "; ".join(short) if short else "")


def _where(label: str) -> str:
    return " or ".join(
        (" ".join(f"*{s}" for s in o.suffixes) or o.name or "files")
        + (f" under {', '.join(o.under)}" if o.under else "")
        + (" (by their first bytes)" if o.starts else "")
        for o in ORIGINS[label]
    )


def read_sample(path: str) -> ContentSample | None:
    """The head and tail chute's file store would keep, or None when unreadable."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(HEAD_SIZE)
            start = max(HEAD_SIZE, size - TAIL_SIZE)
            file.seek(start)
            tail = file.read(TAIL_SIZE) if size > HEAD_SIZE else b""
    except OSError:
        return None
    return ContentSample(head=head, tail=tail, size=size)


def _candidates() -> dict[str, list[tuple[str, Origin]]]:
    found: dict[str, list[tuple[str, Origin]]] = {label: [] for label in ORIGINS}
    by_suffix: dict[str, list[tuple[str, Origin]]] = {}
    by_folder: list[tuple[str, Origin]] = []  # whole names, or any name in some folders
    for label, origins in ORIGINS.items():
        for origin in origins:
            for suffix in origin.suffixes:
                by_suffix.setdefault(suffix, []).append((label, origin))
            if not origin.suffixes:
                by_folder.append((label, origin))
    for root in roots():
        for folder, names in _folders(str(root)):
            here = [(label, o) for label, o in by_folder if o.covers(folder)]
            for name in names:
                suffix = name[name.rfind(".") :] if "." in name else ""
                labels: set[str] = set()  # a file is a candidate of a class once
                for label, origin in [*by_suffix.get(suffix, ()), *here]:
                    if label in labels or (origin.name and name != origin.name):
                        continue
                    if origin.covers(folder):
                        found[label].append((f"{folder}/{name}", origin))
                        labels.add(label)
    return found


def _take(label: str, candidates: list[tuple[str, Origin]]) -> list[MachineFile]:
    order = sorted(candidates)
    random.Random(f"{SEED}:{label}").shuffle(order)
    taken: list[MachineFile] = []
    for path, origin in order:
        sample = read_sample(path)
        if sample is None or sample.size < MIN_SIZE:
            continue
        if origin.starts is not None and not origin.starts(sample.head):
            continue
        taken.append(MachineFile(path, label, sample))
        if len(taken) == PER_CLASS:
            break
    return sorted(taken, key=lambda f: f.path)


def collect() -> MachineCorpus:
    """The corpus of this machine: up to `PER_CLASS` files of every class in `ORIGINS`."""
    found = _candidates()
    files = [f for label, paths in found.items() for f in _take(label, paths)]
    return MachineCorpus(tuple(files), {label: len(paths) for label, paths in found.items()})


def tally(files: Sequence[MachineFile], answers: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(right, files) of each class, for one detector's answers to `files`, in order."""
    counts = {label: [0, 0] for label in ORIGINS}
    for file, answer in zip(files, answers, strict=True):
        counts[file.label][0] += is_correct(file.label, answer)
        counts[file.label][1] += 1
    return {label: (right, total) for label, (right, total) in counts.items() if total}


def table(tallies: Mapping[str, Mapping[str, tuple[int, int]]]) -> str:
    """Each mode's right answers by class and overall, one column a mode."""
    modes = list(tallies)
    labels = list(next(iter(tallies.values()), {}))
    rows = [["class", *modes]]
    for label in labels:
        rows.append([label, *(_cell(*tallies[mode][label]) for mode in modes)])
    totals = [tuple(map(sum, zip(*tallies[mode].values(), strict=True))) for mode in modes]
    rows.append(["all", *(_cell(right, total) for right, total in totals)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _cell(right: int, total: int) -> str:
    return f"{right}/{total} {100 * right / total:.0f}%"
