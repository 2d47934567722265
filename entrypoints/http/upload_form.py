"""The parts of an upload form: its boundary, each part's Content-Disposition, its fields."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from chute.application import FieldError, UnsupportedMediaType, UploadOptions, ValidationFailed
from chute.domain import InvalidValue, Mode, Priority
from chute.domain.validation import check_metadata, check_queue_name, check_text
from chute.entrypoints.http.problems import LocatedValidationFailed
from chute.entrypoints.http.values import parse_rfc3339
from python_multipart.multipart import parse_options_header

FILE_PART = "file"
TEXT_FIELDS = ("priority", "mode", "detect", "metadata", "queue", "run_after")
# RFC 2046 section 5.1.1: 1 to 70 characters, the last one not a space.
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,./:=? -]{0,69}[0-9A-Za-z'()+_,./:=?-]$")
_PARAM = re.compile(r';\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def refuse(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> ValidationFailed:
    """A 422 about the upload body; `loc` is relative to the body."""
    return ValidationFailed([FieldError(loc, msg, kind)])


# -- headers -------------------------------------------------------------------------------


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary; 415 for another media type, 422 for a missing or bad one."""
    media_type, params = parse_options_header(content_type or "")
    if media_type != b"multipart/form-data":
        raise UnsupportedMediaType("An upload must be sent as multipart/form-data.")
    boundary = params.get(b"boundary", b"")
    if not _BOUNDARY.match(boundary.decode("latin-1")):
        loc = ("header", "content-type")
        msg = "multipart/form-data needs a boundary of 1 to 70 allowed characters"
        raise LocatedValidationFailed([FieldError(loc, msg)])
    return boundary


def parse_disposition(value: str) -> tuple[str, dict[str, str]]:
    """`form-data; name="file"; filename="a.pdf"` -> ("form-data", {name:, filename:})."""
    kind, _, rest = value.partition(";")
    params = {}
    for match in _PARAM.finditer(";" + rest):
        raw = match.group(2).strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            # Only the two escapes clients really send; a lone backslash (a Windows
            # path from a browser) stays, so that the safe-name rule can cut at it.
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[match.group(1).lower()] = raw
    return kind.strip().lower(), params


def filename_of(params: dict[str, str]) -> str | None:
    """`filename*` (RFC 5987: charset'lang'percent-encoded) when given, else `filename`.

    Bytes that do not decode are kept as surrogates (`surrogateescape`, as the headers
    are read), so that the upload refuses such a name as it refuses a lone surrogate,
    rather than storing it under a name the client never sent.
    """
    extended = params.get("filename*")
    if extended is not None:
        charset, _, rest = extended.partition("'")
        _, _, encoded = rest.partition("'")
        try:
            return unquote(encoded, encoding=charset or "utf-8", errors="surrogateescape")
        except LookupError:  # an unknown charset: UTF-8 is what clients really use
            return unquote(encoded, encoding="utf-8", errors="surrogateescape")
    return params.get("filename")


# -- the text fields -----------------------------------------------------------------------


def upload_options(fields: dict[str, str]) -> UploadOptions:
    """The options of an upload from its text fields; 422 naming every bad one."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for name, parse in _FIELD_PARSERS.items():
        if name in fields:
            try:
                values[name] = parse(check_text(name, fields[name]))
            except ValueError as exc:
                message = exc.message if isinstance(exc, InvalidValue) else str(exc)
                errors.append(FieldError((name,), message))
    if errors:
        raise ValidationFailed(errors)
    return UploadOptions(**values)


def _choice(enum: type[Priority] | type[Mode]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return enum(text)
        except ValueError:
            raise ValueError(f"must be one of {', '.join(enum)}") from None

    return parse


def _detect(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError("must be true or false")
    return text == "true"


def _metadata(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError("must be a JSON object") from None
    return check_metadata(value)


_FIELD_PARSERS: dict[str, Callable[[str], Any]] = {
    "priority": _choice(Priority),
    "mode": _choice(Mode),
    "detect": _detect,
    "metadata": _metadata,
    "queue": check_queue_name,
    "run_after": parse_rfc3339,  # how far ahead is checked by the engine, against its clock
}
