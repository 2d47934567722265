"""The upload body: `multipart/form-data` parsed as it streams, files fed straight to the store.

FastAPI's `UploadFile`/`Form` would spool every file to a temporary file first; here
python-multipart's streaming parser is fed from `request.stream()`. Its callbacks
are synchronous, so they only collect events; each chunk's events are then handled
asynchronously (`UploadBatch.start_file`/`write`/`end_file`).

Shape errors (a part of an unknown name, a field twice, malformed multipart) are
raised at once; the text fields are checked once the body has ended, before the
batch checks its files (empty, too large, type), which is the order the API promises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from chute.application import PayloadTooLarge, UploadBatch, UploadLimits, UploadOptions
from chute.entrypoints.http.upload_form import (
    FILE_PART,
    TEXT_FIELDS,
    boundary_of,
    filename_of,
    parse_disposition,
    refuse,
    upload_options,
)
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from starlette.requests import Request

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

MAX_FIELD_BYTES = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
BODY_SLACK = 1024 * 1024  # room for part headers and text fields beside the files

Event = tuple[str, bytes]


def max_body_bytes(limits: UploadLimits) -> int:
    """The largest request body an upload may have: every file at its limit, and slack."""
    return limits.max_files * limits.max_file_bytes + BODY_SLACK


# -- the parser's events -------------------------------------------------------------------


class EventCollector:
    """The parser's synchronous callbacks, kept as a list of events to handle later."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._header_bytes = 0

    def callbacks(self) -> MultipartCallbacks:
        return cast(
            "MultipartCallbacks",
            {
                "on_part_begin": self._mark("part_begin"),
                "on_header_field": self._header_data("header_field"),
                "on_header_value": self._header_data("header_value"),
                "on_header_end": self._mark("header_end"),
                "on_headers_finished": self._mark("headers_finished"),
                "on_part_data": self._data("part_data"),
                "on_part_end": self._mark("part_end"),
                "on_end": self._mark("end"),
            },
        )

    def drain(self) -> list[Event]:
        events, self.events = self.events, []
        return events

    def _mark(self, name: str) -> Callable[[], None]:
        def callback() -> None:
            if name == "part_begin":
                self._header_bytes = 0
            self.events.append((name, b""))

        return callback

    def _data(self, name: str) -> Callable[[bytes, int, int], None]:
        def callback(data: bytes, start: int, end: int) -> None:
            self.events.append((name, data[start:end]))

        return callback

    def _header_data(self, name: str) -> Callable[[bytes, int, int], None]:
        def callback(data: bytes, start: int, end: int) -> None:
            self._header_bytes += end - start
            if self._header_bytes > MAX_PART_HEADER_BYTES:
                raise refuse((), f"a part's headers exceed {MAX_PART_HEADER_BYTES} bytes")
            self.events.append((name, data[start:end]))

        return callback


# -- the parts -----------------------------------------------------------------------------


@dataclass
class Part:
    """The part being read: its headers, and for a text field its value so far."""

    headers: dict[str, str] = field(default_factory=dict)
    header_name: bytes = b""
    header_value: bytes = b""
    name: str | None = None  # set once its headers are read; FILE_PART for files
    value: bytearray = field(default_factory=bytearray)

    def end_header(self) -> None:
        name = self.header_name.decode("latin-1").strip().lower()
        # Bytes that are not UTF-8 become surrogates: a file name holding them is refused
        # by the rule on text no database stores, never stored with U+FFFD in their place.
        value = self.header_value.decode("utf-8", errors="surrogateescape")
        self.headers[name] = value.strip()
        self.header_name, self.header_value = b"", b""


class UploadReader:
    """Turns the parser's events into calls on the batch, and collects the text fields."""

    def __init__(self, batch: UploadBatch) -> None:
        self.batch = batch
        self.fields: dict[str, str] = {}
        self.ended = False
        self._part: Part | None = None

    async def handle(self, kind: str, data: bytes) -> None:
        part = self._part
        if kind == "end":
            self.ended = True
        elif kind == "part_begin":
            self._part = Part()
        elif part is None or self.ended:
            return  # nothing of a part is read before its start or after the end
        elif kind == "header_field":
            part.header_name += data
        elif kind == "header_value":
            part.header_value += data
        elif kind == "header_end":
            part.end_header()
        elif kind == "headers_finished":
            await self._begin(part)
        elif kind == "part_data":
            await self._data(part, data)
        elif kind == "part_end":
            await self._end(part)

    async def _begin(self, part: Part) -> None:
        disposition, params = parse_disposition(part.headers.get("content-disposition", ""))
        name = params.get("name")
        if disposition != "form-data" or not name:
            raise refuse((), "every part needs a Content-Disposition: form-data with a name")
        if name == FILE_PART:
            if "filename" not in params and "filename*" not in params:
                # What `curl -F file=/path` sends when the @ is forgotten: the path's text.
                raise refuse(
                    (name,),
                    "a file part needs a filename; this one is a text field "
                    "(with curl: -F file=@path, not -F file=path)",
                    "missing_filename",
                )
            part.name = name
            await self.batch.start_file(filename_of(params), part.headers.get("content-type"))
            return
        if name not in TEXT_FIELDS:
            expected = ", ".join((FILE_PART, *TEXT_FIELDS))
            raise refuse(
                (name[:100],), f"unexpected part; the parts are {expected}", "extra_forbidden"
            )
        if "filename" in params or "filename*" in params:
            raise refuse((name,), "a text field, not a file")
        if name in self.fields:
            raise refuse((name,), "given more than once")
        part.name = name

    async def _data(self, part: Part, data: bytes) -> None:
        if part.name == FILE_PART:
            await self.batch.write(data)
            return
        part.value += data
        if len(part.value) > MAX_FIELD_BYTES:
            raise refuse((str(part.name),), f"at most {MAX_FIELD_BYTES} bytes", "string_too_long")

    async def _end(self, part: Part) -> None:
        self._part = None
        if part.name == FILE_PART:
            await self.batch.end_file()
        elif part.name is not None:
            try:
                self.fields[part.name] = part.value.decode("utf-8")
            except UnicodeDecodeError:
                raise refuse((part.name,), "must be UTF-8 text") from None


# -- the whole body ------------------------------------------------------------------------


async def parse_upload(request: Request, batch: UploadBatch, limits: UploadLimits) -> UploadOptions:
    """Stream the upload's files into `batch`; return the options of its text fields."""
    boundary = boundary_of(request.headers.get("content-type"))
    max_body = max_body_bytes(limits)
    _check_declared_length(request, max_body)
    collector = EventCollector()
    parser = MultipartParser(boundary, collector.callbacks(), max_header_size=MAX_PART_HEADER_BYTES)
    reader = UploadReader(batch)
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body:
            raise PayloadTooLarge(f"An upload body may hold at most {max_body} bytes.")
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise refuse((), f"malformed multipart body: {exc}", "multipart_invalid") from None
        for kind, data in collector.drain():
            await reader.handle(kind, data)
    if not reader.ended:
        raise refuse((), "the multipart body ends before its closing boundary", "multipart_invalid")
    return upload_options(reader.fields)


def _check_declared_length(request: Request, max_body: int) -> None:
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        return  # the server refuses such a request before it reaches us
    if declared > max_body:
        raise PayloadTooLarge(f"An upload body may hold at most {max_body} bytes.")
