"""UUIDv7 ids: their layout, their order, and their randomness across processes."""

from __future__ import annotations

import os
import time
from uuid import UUID

from chute.adapters.system import UuidV7Generator


def test_ids_are_rfc_9562_version_7_with_the_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    new = UuidV7Generator().new_id()
    after = time.time_ns() // 1_000_000

    assert new.version == 7
    assert new.variant == "specified in RFC 4122"
    assert before <= new.int >> 80 <= after


def test_ids_of_one_generator_strictly_increase_within_a_millisecond_and_across() -> None:
    generator = UuidV7Generator()
    ids = [generator.new_id() for _ in range(20_000)]  # many per millisecond

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_the_random_bits_differ_between_generators_and_between_ids() -> None:
    first, second = UuidV7Generator(), UuidV7Generator()
    ids = [first.new_id() for _ in range(1000)] + [second.new_id() for _ in range(1000)]

    random_bits = {new.int & ((1 << 62) - 1) for new in ids}
    assert len(random_bits) == len(ids)


def test_a_forked_child_draws_random_bytes_of_its_own() -> None:
    generator = UuidV7Generator()
    generator.new_id()  # the parent has drawn a buffer of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id's random bits, then leave at once
        os.write(write, str(generator.new_id().int & ((1 << 62) - 1)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_bits = int(os.read(read, 64))
    os.close(read)

    assert child_bits != generator.new_id().int & ((1 << 62) - 1)


def test_an_id_is_a_uuid() -> None:
    assert isinstance(UuidV7Generator().new_id(), UUID)
