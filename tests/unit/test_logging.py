"""chute's log lines (`entrypoints/logging.py`): one JSON object a line, whichever of
structlog or the standard library made it; written together at the end of an event
loop's round, at once elsewhere, and never lost at a normal exit."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from chute.entrypoints.logging import LineHandler, configure_logging


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> Iterator[CountingStream]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "INFO")
    stream = CountingStream()
    handler = root.handlers[0]
    assert isinstance(handler, LineHandler)
    handler.setStream(stream)
    stream.writes = 0
    yield stream
    root.handlers, root.level = handlers, level
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_lines_on_a_loop_are_written_together_at_the_end_of_its_round(
    stream: CountingStream,
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="r-1"):
        structlog.get_logger("chute.http").info("http.request", status=201)
        logging.getLogger("chute.engine").info("job.created", extra={"job_id": "j-1"})
    assert stream.getvalue() == ""  # they wait for the round to end
    await asyncio.sleep(0)
    assert stream.writes == 1
    http, engine = lines(stream)
    assert http["event"] == "http.request" and http["status"] == 201
    assert engine == {
        "event": "job.created",
        "request_id": "r-1",
        "logger": "chute.engine",
        "level": "info",
        "timestamp": engine["timestamp"],
        "job_id": "j-1",
    }
    assert (http["request_id"], http["logger"], http["level"]) == ("r-1", "chute.http", "info")
    assert http["timestamp"].endswith("Z") and engine["timestamp"].endswith("Z")


async def test_a_line_from_a_thread_is_written_at_once_after_those_that_wait(
    stream: CountingStream,
) -> None:
    logging.getLogger("chute.engine").info("first")
    thread = threading.Thread(target=lambda: logging.getLogger("chute.worker").info("second"))
    thread.start()
    thread.join()
    assert [line["event"] for line in lines(stream)] == ["first", "second"]


def test_without_a_loop_a_line_is_written_at_once(stream: CountingStream) -> None:
    structlog.get_logger("chute.http").info("http.request")
    assert [line["event"] for line in lines(stream)] == ["http.request"]


async def test_levels_of_the_standard_librarys_loggers_hold_for_structlogs_lines(
    stream: CountingStream,
) -> None:
    http = logging.getLogger("chute.http")
    try:
        http.setLevel(logging.WARNING)
        structlog.get_logger("chute.http").info("http.request")
        structlog.get_logger("chute.http").warning("http.slow")
        structlog.get_logger("chute.other").debug("below the root's level")
        await asyncio.sleep(0)
    finally:
        http.setLevel(logging.NOTSET)
    assert [line["event"] for line in lines(stream)] == ["http.slow"]


async def test_errors_carry_their_traceback_and_odd_values_their_repr(
    stream: CountingStream,
) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.get_logger("chute.http").exception("http.unhandled_error")
        logging.getLogger("chute.engine").exception("job.failed", extra={"odd": {1, 2}})
    await asyncio.sleep(0)
    http, engine = lines(stream)
    assert "RuntimeError: boom" in http["exception"] and http["level"] == "error"
    assert "RuntimeError: boom" in engine["exception"] and engine["odd"] == "{1, 2}"


async def test_a_stream_that_takes_no_write_stops_neither_the_loop_nor_the_next_lines(
    stream: CountingStream,
) -> None:
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, LineHandler)
    broken = io.StringIO()
    broken.close()
    handler.setStream(broken)
    logging.getLogger("chute.engine").info("lost")
    await asyncio.sleep(0)
    handler.setStream(stream)
    logging.getLogger("chute.engine").info("kept")
    await asyncio.sleep(0)
    assert [line["event"] for line in lines(stream)] == ["kept"]


def test_lines_a_closed_loop_left_are_written_by_the_next_loops_round(
    stream: CountingStream,
) -> None:
    async def log(event: str) -> None:
        logging.getLogger("chute.engine").info(event)

    first = asyncio.new_event_loop()

    def last_callback() -> None:
        logging.getLogger("chute.engine").info("left")
        first.stop()  # this round is its last: the one that would write the line never runs

    first.call_soon(last_callback)
    first.run_forever()
    first.close()
    assert stream.getvalue() == ""
    asyncio.run(log("next"))
    assert [line["event"] for line in lines(stream)] == ["left", "next"]


def test_lines_of_the_last_round_before_exit_are_written() -> None:
    """A process whose loop logs and ends at once (a command, a worker stopping) still
    writes its last lines: `logging.shutdown` at exit flushes what waits."""
    program = (
        "import asyncio, logging\n"
        "from chute.entrypoints.logging import configure_logging\n"
        "configure_logging('json', 'INFO')\n"
        "async def main():\n"
        "    for n in range(3):\n"
        "        logging.getLogger('chute.cli').info('line', extra={'n': n})\n"
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(main())\n"
        "loop.close()\n"  # the round's flush never ran on this loop
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    assert [json.loads(line)["n"] for line in done.stderr.splitlines()] == [0, 1, 2]


def test_a_librarys_warning_is_a_line_like_any_other() -> None:
    program = (
        "import warnings\n"
        "from chute.entrypoints.logging import configure_logging\n"
        "configure_logging('json', 'INFO')\n"
        "warnings.warn('careful', UserWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    (line,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert (line["logger"], line["level"]) == ("py.warnings", "warning")
    assert "UserWarning: careful" in line["event"]
