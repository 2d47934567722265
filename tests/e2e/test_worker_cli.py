"""`chute worker`'s arguments: what `--processor` accepts, and clear exits on bad input.

These run `main()` in this process, with logging left alone; nothing gets as far as a
database (every case is refused first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chute.entrypoints import cli
from chute.entrypoints.cli.worker import BadProcessor, load_processor

from tests import processors
from tests.pg import free_port


@pytest.fixture(autouse=True)
def keep_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    # `main()` would point the root logger at this test's captured stderr for good.
    monkeypatch.setattr(cli, "configure_logging", lambda *args: None)


class Factory:
    """A class: called once, its instance is the processor."""

    async def __call__(self, job: Any, context: Any) -> None:
        return None


def make_processor() -> Any:
    return processors.sleepy


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sleepy", "expected module:name"),
        ("tests.processors:", "expected module:name"),
        ("tests.no_such_module:run", "cannot import tests.no_such_module"),
        ("tests.processors:missing", "tests.processors has no missing"),
        ("tests.fileserver:BIG", "BIG is not callable"),
        ("tests.processors:not_a_processor", "did not return an async processor"),
    ],
)
def test_a_bad_processor_exits_2_with_a_message(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["worker", "--processor", spec]) == 2
    error = capsys.readouterr().err
    assert error.startswith("chute worker: --processor") and message in error


@pytest.mark.parametrize(
    "argv",
    [
        ["--worker-id", "x" * 256],
        ["--mime-type", "not a type"],
        ["--queue", "ok", "--queue", "Not.OK"],
    ],
)
def test_bad_worker_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", *argv]) == 2
    assert capsys.readouterr().err.startswith("chute worker: ")


def test_a_bad_queue_is_named_in_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["worker", "--queue", "Not.OK"]) == 2
    assert "--queue 'Not.OK': must be 1 to 64 characters" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--slots", "0"], ["--lease-seconds", "4"], ["--grace-seconds", "-1"], ["--mode", "x"]]
)
def test_out_of_range_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["worker", *argv])
    assert exited.value.code == 2


def test_processor_specs_name_functions_objects_or_factories() -> None:
    assert load_processor("ingest") is None  # the built-in, made with the settings
    assert load_processor("tests.processors:sleepy") is processors.sleepy
    assert isinstance(load_processor(f"{__name__}:Factory"), Factory)
    assert load_processor(f"{__name__}:make_processor") is processors.sleepy
    with pytest.raises(BadProcessor, match="the factory failed"):
        load_processor(f"{__name__}:failing_factory")


def failing_factory() -> Any:
    raise RuntimeError("no configuration")


def test_metrics_port_is_refused_with_server(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["worker", "--server", "http://127.0.0.1:9", "--metrics-port", "9100"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.startswith("chute worker: --metrics-port: with --server")


def test_a_server_out_of_reach_stops_the_worker_at_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the embedded database's default would be ./var/chute.db
    monkeypatch.setenv("CHUTE_URL", f"http://127.0.0.1:{free_port()}")  # nobody listens
    assert cli.main(["worker"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0], lines
    assert list(tmp_path.iterdir()) == []  # no database made, nothing migrated
