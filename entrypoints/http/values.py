"""JSON values of the HTTP API: times in and out, media-type patterns, text, plain JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl

from chute.application import FieldError
from chute.domain import InvalidValue
from chute.domain import validation as rules
from chute.entrypoints.http.problems import LocatedValidationFailed
from fastapi import Request
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StrictInt, WithJsonSchema


def rfc3339(value: datetime) -> str:
    """`2026-11-29T19:11:35.123456Z`: UTC, always with microseconds."""
    if value.tzinfo is not UTC:  # stored times are UTC; a naive one is taken as such
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    # isoformat, not strftime: the same text three times faster, and a four-digit year
    # even before 1000, as RFC 3339 asks. Without arguments (timespec=, or a replace()
    # to drop the offset), which cost more than the formatting itself: it counts when
    # a page or a batch answers hundreds of times. It ends in "+00:00", and leaves out
    # a zero fraction.
    text = value.isoformat()
    return text[:-6] + ("Z" if value.microsecond else ".000000Z")


# Shown as what it is (generated clients then read a date-time, not a string).
UtcTime = Annotated[
    datetime,
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-11-29T19:11:35.123456Z"]}
    ),
]

# In the syntax both Python and JSON Schema read: the description shows this very rule.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(RFC3339_PATTERN)


def parse_rfc3339(value: object) -> object:
    """An RFC 3339 time with its UTC offset; a time without one is refused, and so is a
    number (pydantic would read it as Unix seconds, which the description does not say)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 time with a UTC offset, e.g. 2026-11-29T19:11:35Z")
    if not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 time with a UTC offset, e.g. 2026-11-29T19:11:35Z "
            "(write '+' as %2B in a query string)"
        )
    # fromisoformat takes at most 6 fractional digits; finer ones cannot matter here.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return datetime.fromisoformat(value.replace("z", "Z"))


AwareTime = Annotated[
    datetime,
    BeforeValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
# The description shows the domain's own patterns; the domain's checks refuse the rest.
MimeType = Annotated[
    str,
    AfterValidator(rules.check_mime_type),
    WithJsonSchema(
        {"type": "string", "pattern": rules.MIME_TYPE_PATTERN, "examples": ["application/pdf"]}
    ),
]
MimePattern = Annotated[
    str,
    AfterValidator(rules.check_mime_pattern),
    WithJsonSchema(
        {"type": "string", "pattern": rules.MEDIA_RANGE_PATTERN, "examples": ["image/*"]}
    ),
]
QueueName = Annotated[
    str,
    AfterValidator(rules.check_queue_name),
    WithJsonSchema(
        {"type": "string", "pattern": rules.QUEUE_NAME_PATTERN, "examples": ["default"]}
    ),
]


def storable_text(value: str) -> str:
    """The domain's rule on every string: no NUL, no unpaired surrogate."""
    return rules.check_text("value", value)


def utf8_query(request: Request) -> None:
    """A route dependency: a query whose values are not storable UTF-8 text is a 422 that
    names each one. Starlette reads bytes that are not UTF-8 (a surrogate written as
    WTF-8, say) as U+FFFD, so a value stored from the query would be stored changed, not
    refused. For routes that store what their query says."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return
    errors = []
    text = raw.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True, errors="surrogateescape"):
        try:
            rules.check_text(name, value)
        except InvalidValue as exc:
            errors.append(FieldError(("query", name), exc.message))
    if errors:
        raise LocatedValidationFailed(errors)


# A string field without a rule of its own (fields with one, such as `worker_id` or
# `source_uri`, check the same text within it).
Text = Annotated[str, AfterValidator(storable_text)]


def whole_number(value: object) -> object:
    """A float without a fraction as the integer it is: JSON has one kind of number, and
    JSON Schema counts `34.0` as an integer. `34.5`, `"34"` and `true` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer of a JSON body: strict (no strings, no booleans), but `3.0` is 3.
JsonInt = Annotated[StrictInt, BeforeValidator(whole_number)]
