"""Which jobs a metadata filter matches: the one definition, which every adapter follows.

A filter names a top-level key and a text. A job's metadata matches it when the key's
value is a JSON string equal to the text, or a number, `true`, `false` or `null` whose
JSON text (as chute writes it) equals the text: `batch=7` finds `{"batch": 7}` and
`{"batch": "7"}`, but not `{"batch": 7.0}` nor `{"batch": [7]}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from chute.domain.errors import InvalidValue
from chute.domain.validation import check_text

MAX_METADATA_FILTERS = 5

_MISSING = object()


def value_matches(stored: object, text: str) -> bool:
    """Whether one metadata value matches the filter's text."""
    if isinstance(stored, str):
        return stored == text
    if stored is None or isinstance(stored, bool | int | float):
        return json.dumps(stored) == text
    return False  # objects and arrays match nothing


def metadata_matches(metadata: Mapping[str, Any], filters: Iterable[tuple[str, str]]) -> bool:
    """Whether `metadata` matches every (key, text) filter."""
    return all(key in metadata and value_matches(metadata[key], text) for key, text in filters)


def json_scalar(text: str) -> object:
    """The JSON number, `true`, `false` or `null` whose JSON text is `text` exactly (the
    value a database compares besides the string), or a sentinel when there is none."""
    try:
        value = json.loads(text)
    except ValueError:
        return _MISSING
    if isinstance(value, str | list | dict) or json.dumps(value) != text:
        return _MISSING
    return value


def has_json_scalar(text: str) -> bool:
    """Whether `text` is the JSON text of a number, `true`, `false` or `null`."""
    return json_scalar(text) is not _MISSING


def check_metadata_filters(filters: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Return the filters sorted by key when there are at most five, with storable text
    and no key given twice; else raise `InvalidValue` naming the field."""
    found = tuple(sorted(filters))
    for key, text in found:
        check_text(f"metadata.{key}", key)
        check_text(f"metadata.{key}", text)
    if len(found) > MAX_METADATA_FILTERS:
        name = f"metadata.{found[MAX_METADATA_FILTERS][0]}"
        raise InvalidValue(name, f"at most {MAX_METADATA_FILTERS} metadata filters")
    keys = [key for key, _ in found]
    for key in keys:
        if keys.count(key) > 1:
            raise InvalidValue(f"metadata.{key}", "give each metadata key at most once")
    return found
