"""The one definition of what a metadata filter matches, and its limits."""

from __future__ import annotations

import pytest
from chute.domain.errors import InvalidValue
from chute.domain.metadata import check_metadata_filters, metadata_matches, value_matches


@pytest.mark.parametrize(
    ("stored", "text", "expected"),
    [
        ("acme", "acme", True),
        ("Acme", "acme", False),
        (7, "7", True),
        ("7", "7", True),
        (7.0, "7", False),
        (7.0, "7.0", True),
        (True, "true", True),
        ("true", "true", True),
        (True, "True", False),
        (None, "null", True),
        (None, "", False),
        ([7], "7", False),
        ({"a": 1}, '{"a": 1}', False),
    ],
)
def test_a_value_matches_as_a_string_or_by_its_json_text(
    stored: object, text: str, expected: bool
) -> None:
    assert value_matches(stored, text) is expected


def test_metadata_matches_only_when_every_key_is_there_and_matches() -> None:
    metadata = {"tenant": "acme", "batch": 7, "gone": None}
    assert metadata_matches(metadata, [("tenant", "acme"), ("batch", "7")])
    assert metadata_matches(metadata, [("gone", "null")])
    assert not metadata_matches(metadata, [("missing", "null")])
    assert not metadata_matches(metadata, [("tenant", "acme"), ("batch", "8")])


def test_filters_are_sorted_and_bounded_to_five() -> None:
    assert check_metadata_filters([("b", "1"), ("a", "2")]) == (("a", "2"), ("b", "1"))
    with pytest.raises(InvalidValue) as refused:
        check_metadata_filters([(f"k{i}", "v") for i in range(6)])
    assert refused.value.field == "metadata.k5"


@pytest.mark.parametrize("pair", [("a\x00", "v"), ("a", "v\x00"), ("a", "\ud800")])
def test_filters_refuse_text_no_database_stores(pair: tuple[str, str]) -> None:
    with pytest.raises(InvalidValue):
        check_metadata_filters([pair])


def test_a_key_is_given_once() -> None:
    with pytest.raises(InvalidValue) as refused:
        check_metadata_filters([("a", "1"), ("a", "2")])
    assert refused.value.field == "metadata.a"
