"""Logging: structlog for chute's own lines, and the standard library routed through it.

Every line is one JSON object (or a readable console line) carrying the request id
bound by the request-id middleware. The application layer logs with the standard
library and passes its fields as `extra=`; `LineFormatter` lifts them into the line.
structlog's lines skip the standard library's records and are written by `LineLogger`
to the same handler's stream. Nothing here logs request bodies, file content or headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, TextIO

import orjson
import structlog
from structlog.typing import EventDict

LogFormat = Literal["json", "console"]

# Loggers of the server that would otherwise print their own, differently shaped lines.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# The HTTP client of workers: its INFO lines print whole URLs (query strings can hold
# tokens) and add a line per download beside the engine's own event for the job.
_QUIET_LOGGERS = ("httpx", "httpcore")


# What a record holds of its own; anything else came as `extra=` and goes into the line.
# (uvicorn's `color_message` is a second, ANSI-coloured copy of its message: dropped.)
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message",
}  # fmt: skip


def _renderer(format: LogFormat) -> Callable[[EventDict], str]:
    """An event dict to its line."""
    if format == "console":
        # Plain tracebacks: the default (rich) one prints every frame's local variables,
        # which hold request bodies and headers.
        # Colours only on a terminal (and never with NO_COLOR set): a file, a pipe or a
        # log collector would get the escape codes as text.
        colors = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        console = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )
        return lambda event: str(console(None, "", event))
    return _json_line


def _json_line(event: EventDict) -> str:
    """JSON as `json.dumps` writes it, compact, in a fifth of the time (orjson); a value
    JSON has no type for is written as its `repr`, as structlog's JSONRenderer does."""
    if "exc_info" in event:
        event = structlog.processors.format_exc_info(None, "", event)
    return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def _timestamp(created: float) -> str:
    """`created` (seconds since the epoch) as structlog's ISO stamps: UTC, ending in Z."""
    return datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")


class LineFormatter(logging.Formatter):
    """A standard library record (the engine's, the workers', uvicorn's) as the same line
    as structlog's: its message as `event`, the request's context (the request id), its
    logger, level and time, then whatever it passed as `extra=`."""

    def __init__(self, render: Callable[[EventDict], str]) -> None:
        super().__init__()
        self._render = render

    def format(self, record: logging.LogRecord) -> str:
        event: EventDict = {"event": record.getMessage()}
        event.update(structlog.contextvars.get_contextvars())
        event["logger"] = record.name
        event["level"] = record.levelname.lower()
        event["timestamp"] = _timestamp(record.created)
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                event[key] = value
        if record.exc_info:
            event["exc_info"] = record.exc_info
        return self._render(event)


class LineHandler(logging.StreamHandler[TextIO]):
    """Where every line goes: `stream` (stderr), one line after another.

    On a thread that runs an event loop (the server's, a worker's), lines wait for the
    end of the loop's current round of callbacks and are written together: one write
    for the lines of many requests. A write each cost a create about a tenth of its CPU
    (a system call, and the GIL handed to another thread and back; `make bench`'s
    `parts`). Elsewhere (another thread, a command before its loop) a line is written
    at once, after any that wait. `flush()` writes what waits; `logging.shutdown` calls
    it at exit, so a line is lost only with the process killed in that round.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._waiting: list[str] = []
        self._flushing_on: asyncio.AbstractEventLoop | None = None  # the loop due to write them

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write_line(self.format(record))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write_line(self, line: str) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._locked():
            # A round of this loop writes them, unless one is due already; lines left by
            # a loop that ended before its round did are written by this one's.
            if loop is not None and (not self._waiting or loop is not self._flushing_on):
                loop.call_soon(self._flush_soon)
                self._flushing_on = loop
            self._waiting.append(line)
            if loop is None:
                self._write_waiting()

    def flush(self) -> None:
        with self._locked():
            self._write_waiting()

    def _flush_soon(self) -> None:
        try:
            self.flush()
        except Exception:  # a stream that takes no write has nowhere to say so
            pass

    def _write_waiting(self) -> None:
        if self._waiting:
            text = self.terminator.join(self._waiting) + self.terminator
            self._waiting.clear()
            self.stream.write(text)
        if hasattr(self.stream, "flush"):
            self.stream.flush()

    def _locked(self) -> contextlib.AbstractContextManager[object]:
        return self.lock or contextlib.nullcontext()


class LineLogger:
    """What structlog's lines are written by: the rendered line goes straight to chute's
    handler, without a record of the standard library (which cost half of a line's
    time). A level set on the standard library's logger of the same name
    (`logging.getLogger("chute.http").setLevel(...)`) still holds."""

    def __init__(self, handler: LineHandler, name: str) -> None:
        self._handler, self.name = handler, name
        self._level_of = logging.getLogger(name)

    def enabled_for(self, method: str) -> bool:
        return self._level_of.isEnabledFor(_LEVELS[method])

    def msg(self, line: str) -> None:
        self._handler.write_line(line)

    # structlog's filtering logger calls these by level name (`exception` is `error`).
    debug = info = warning = error = critical = msg


# The standard library's levels by the names structlog's methods pass: debug, info, ...
_LEVELS = {name.lower(): level for name, level in logging.getLevelNamesMapping().items()}


def _by_logger_level(logger: LineLogger, method: str, event: EventDict) -> EventDict:
    if not logger.enabled_for(method):
        raise structlog.DropEvent
    return event


def configure_logging(format: LogFormat = "json", level: str = "INFO") -> None:
    """Send every log line, structlog's and the standard library's, to stderr as `format`."""
    render = _renderer(format)
    handler = LineHandler(sys.stderr)
    handler.setFormatter(LineFormatter(render))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            _by_logger_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            lambda _logger, _method, event: render(event),
        ],
        # Drops a level below the root's at once; `_by_logger_level` then asks the
        # logger of the line's name, as the standard library's lines are asked.
        wrapper_class=structlog.make_filtering_bound_logger(root.level),
        logger_factory=lambda name: LineLogger(handler, name),
        # Not cached: loggers made before `configure_logging` (module level) must follow it.
        cache_logger_on_first_use=False,
    )
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers = []
        server_logger.propagate = True
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    # A library's warning (`warnings.warn`) becomes a line of logger `py.warnings` like
    # any other, not a raw text line on stderr among the JSON ones.
    logging.captureWarnings(True)
    # No line shows the caller's source file, thread or process: the standard library
    # need not look them up for every record (the logging HOWTO's "Optimization").
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
