"""The client commands' parsing and error mapping, without a server."""

from __future__ import annotations

import argparse
from uuid import uuid4

import httpx
import pytest
from chute.adapters.remote import Unauthorized
from chute.adapters.remote.errors import Problem, error_of
from chute.application import JobNotFound, ValidationFailed
from chute.domain import JobStatus
from chute.entrypoints.cli import parser
from chute.entrypoints.cli.client import Exit, UsageError, describe
from chute.entrypoints.cli.filters import job_filter, metadata_value, one_of, pair


def test_metadata_values_are_json_scalars_or_text() -> None:
    assert [metadata_value(v) for v in ("7", "true", "null", "1.5")] == [7, True, None, 1.5]
    assert [metadata_value(v) for v in ("acme", "007", '"x"', "[1]", "")] == [
        "acme", "007", '"x"', "[1]", "",
    ]  # fmt: skip


def test_a_pair_needs_a_key_and_an_equals_sign() -> None:
    assert pair("tenant=a=b") == ("tenant", "a=b")
    for bad in ("tenant", "=x"):
        with pytest.raises(argparse.ArgumentTypeError):
            pair(bad)


def test_an_enum_flag_names_its_values_when_one_is_wrong() -> None:
    assert one_of(JobStatus)("failed") is JobStatus.FAILED
    with pytest.raises(argparse.ArgumentTypeError, match="'done' is not one of pending"):
        one_of(JobStatus)("done")


def test_list_flags_make_the_filter() -> None:
    args = parser(["jobs"]).parse_args(
        ["jobs", "list", "--status", "failed", "--status", "cancelled", "--queue", "q",
         "--metadata", "tenant=acme", "--created-after", "2026-12-01T00:00:00Z"]
    )  # fmt: skip
    found = job_filter(args)
    assert found.statuses == {JobStatus.FAILED, JobStatus.CANCELLED}
    assert found.queues == {"q"} and found.metadata == (("tenant", "acme"),)
    assert found.created_after is not None and found.created_after.utcoffset() is not None


def test_a_time_without_offset_is_refused() -> None:
    with pytest.raises(SystemExit) as exited:
        parser(["jobs"]).parse_args(["jobs", "list", "--created-after", "2026-12-01T00:00"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("no"), Exit.USAGE),
        (JobNotFound(uuid4()), Exit.NOT_FOUND),
        (ValidationFailed([]), Exit.USAGE),
        (Unauthorized(Problem("unauthorized", "Unauthorized", 401, "A key is needed.")), 4),
        (httpx.ConnectError("refused"), Exit.UNREACHABLE),
        (PermissionError("denied"), Exit.USAGE),
        (RuntimeError("a bug"), None),
    ],
)
def test_each_error_has_its_exit_code(error: Exception, code: int | None) -> None:
    assert describe(error, "http://server")[0] == code


def test_a_problem_is_shown_as_its_title_and_detail() -> None:
    problem = Problem("job-not-found", "Job not found", 404, "No job has id x.")
    assert describe(error_of(problem), "s")[1] == "Job not found: No job has id x."
