"""Each mode's accuracy on files this machine's packages installed (tests/machine_corpus.py).

A correctness property, not a timing: `auto` puts the two detectors together, and must
be right at least as often as the better of them on files no one here chose.
"""

from __future__ import annotations

import pytest
from chute.adapters.detection import AutoDetector, LibmagicDetector, MagikaDetector
from chute.application.ports import ContentDetector

from tests import machine_corpus
from tests.machine_corpus import PER_CLASS, MachineCorpus


@pytest.fixture(scope="module")
def machine() -> MachineCorpus:
    return machine_corpus.collect()


async def _tally(detector: ContentDetector, corpus: MachineCorpus) -> dict[str, tuple[int, int]]:
    answers = [(await detector.detect(f.sample)).mime_type for f in corpus.files]
    return machine_corpus.tally(corpus.files, answers)


def test_the_machine_corpus_is_the_same_on_every_collect(machine: MachineCorpus) -> None:
    again = machine_corpus.collect()
    assert [(f.path, f.label) for f in again.files] == [(f.path, f.label) for f in machine.files]
    assert all(f.sample.size >= machine_corpus.MIN_SIZE for f in machine.files)


async def test_auto_is_as_accurate_as_the_better_detector_on_this_machines_files(
    machine: MachineCorpus,
) -> None:
    # Any Debian machine with Python holds far more than this (its programs, their
    # copyright files and changelogs, the standard library): fewer would prove little.
    assert len(machine.files) >= 4 * PER_CLASS, machine.describe()
    fast, learned = LibmagicDetector(), MagikaDetector()
    tallies = {
        "fast": await _tally(fast, machine),
        "accurate": await _tally(learned, machine),
        "auto": await _tally(AutoDetector(fast, learned), machine),
    }
    right = {mode: sum(r for r, _ in found.values()) for mode, found in tallies.items()}
    report = f"{machine.describe()}\n{machine_corpus.table(tallies)}"
    assert right["auto"] >= max(right["fast"], right["accurate"]), report
