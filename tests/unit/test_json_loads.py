"""`json_loads`, the JSON columns' reader: the value `json.loads` reads, every time."""

from __future__ import annotations

import json
import math

import pytest
from chute.adapters.sqlalchemy.engine import json_loads

TEXTS = [
    '{"tenant": "acme", "n": 42, "x": 1.5, "ok": true, "none": null, "l": [1, "2"]}',
    '{"big": 123456789012345678901234567890}',  # past 64 bits: orjson would give a float
    '{"low": -9223372036854775809}',  # below int64
    '{"u64": 18446744073709551615}',
    '{"digits": "1234567890123456789012"}',
    '{"f": 0.12345678901234567890123}',
    '{"nan": NaN, "inf": Infinity, "-inf": -Infinity}',  # orjson refuses them
    '{"huge": 1e400}',
    '"\\ud800"',  # a lone surrogate
    '{"a": 1, "a": 2}',
    '{"zero": -0.0, "e": 1E-7, "unicode": "\\u00e9t\\u00e9 \u2603"}',
    "[]",
    "3",
]


@pytest.mark.parametrize("text", TEXTS)
def test_it_reads_what_json_loads_reads(text: str) -> None:
    expected, found = json.loads(text), json_loads(text)
    assert repr(found) == repr(expected)
    assert _types(found) == _types(expected)


def test_it_refuses_what_json_loads_refuses() -> None:
    with pytest.raises(ValueError):
        json_loads('{"a": ')


def _types(value: object) -> object:
    """The value with each scalar replaced by its type (1 and 1.0 compare equal)."""
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return type(value)
