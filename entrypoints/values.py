"""JSON values of the HTTP API: times in and out, media-type patterns, plain JSON."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from chute.domain import validation as rules
from pydantic import AfterValidator, BeforeValidator, PlainSerializer


def rfc3339(value: datetime) -> str:
    """`2026-11-29T19:11:35.123456Z`: UTC, always with microseconds."""
    if value.tzinfo is None:  # stored times are UTC; a naive one is taken as such
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


UtcTime = Annotated[datetime, PlainSerializer(rfc3339, return_type=str, when_used="json")]

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(value: object) -> object:
    """An RFC 3339 time with its UTC offset; a time without one is refused."""
    if not isinstance(value, str):
        return value
    if not _RFC3339.match(value):
        raise ValueError(
            "must be an RFC 3339 time with a UTC offset, e.g. 2026-11-29T19:11:35Z "
            "(write '+' as %2B in a query string)"
        )
    # fromisoformat takes at most 6 fractional digits; finer ones cannot matter here.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return datetime.fromisoformat(value.replace("z", "Z"))


MAX_JSON_DEPTH = 64


def check_plain_json(value: Any) -> Any:
    """Refuse what JSON cannot carry back to the client: NaN or Infinity (which Python's
    parser accepts) and nesting deeper than `MAX_JSON_DEPTH` (which the response encoder
    and the stores cannot take). Iterative, so that depth itself cannot overflow it."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not JSON numbers")
        if isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"at most {MAX_JSON_DEPTH} levels of nesting")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


AwareTime = Annotated[datetime, BeforeValidator(parse_rfc3339)]
MimePattern = Annotated[str, AfterValidator(rules.check_mime_pattern)]
