"""schemathesis on chute's own OpenAPI description: the schema, its checks and hooks.

The description is read from an app built at import: building one connects to nothing
and touches no disk (the container is lazy), and schemathesis's pytest integration
needs the operations before the fixtures run. (Its fixture-based loader,
`schemathesis.pytest.from_fixture`, does not run on pytest 9.2: it sets
`Node._nodeid`, which pytest no longer has.)
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import UUID

import schemathesis
from chute.entrypoints.bootstrap import build_container
from chute.entrypoints.http.app import create_app
from chute.entrypoints.settings import Settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks

from tests import corpus

# Generated requests per operation, besides schemathesis's examples and coverage cases.
EXAMPLES = int(os.environ.get("CHUTE_FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("CHUTE_FUZZ_SEED", "20261129"))
WORKER = "w1"  # holds the seeded running jobs
PROBLEM_FIELDS = ("type", "title", "status", "request_id")

# Ids of jobs that exist, for `flatmap_case`; filled for each test from `seed_jobs`.
KNOWN_IDS: list[str] = []


def openapi_description() -> dict[str, Any]:
    """The app's own OpenAPI description, from an app that is never started."""
    settings = Settings(database_url="sqlite+aiosqlite://", storage_dir="/nonexistent")
    description: dict[str, Any] = create_app(build_container(settings)).openapi()
    return description


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # Nothing replayed from earlier runs: every run of one seed sends the same
        # requests (but for the ids of the jobs they name, made anew each run).
        "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
    }
)
# The stream never ends, so no response to it can be read whole and checked: its
# refusals are tested in tests/e2e/test_stream_processes.py instead.
schema = schemathesis.openapi.from_dict(openapi_description(), config=CONFIG).exclude(
    operation_id="stream_events"
)


# -- checks --------------------------------------------------------------------------------


def _header(response: schemathesis.Response, name: str) -> str:
    values = response.headers.get(name) or [""]
    return values[0]


@schemathesis.check
def errors_are_problems(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every 4xx and 5xx is `application/problem+json` with type, title, status, request_id."""
    if response.status_code < 400:
        return
    content_type = _header(response, "content-type")
    assert content_type == "application/problem+json", f"an error sent as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict), "a problem is a JSON object"
    missing = [name for name in PROBLEM_FIELDS if not body.get(name)]
    assert not missing, f"the problem has no {', '.join(missing)}"
    assert body["status"] == response.status_code, "the problem's status is not the response's"
    assert body["request_id"] == _header(response, "x-request-id"), "request_id != X-Request-ID"


CHECKS = [
    not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.allow_header_conformance,
    errors_are_problems,
]
# Left out, and why:
# - use_after_free, ensure_resource_availability: they expect a 404 after a DELETE, but
#   cancelling is a DELETE that keeps the job (cancelling never deletes history),
#   so a cancelled job rightly answers 200 afterwards.
# - positive_data_acceptance: the description cannot say all that the server checks (a
#   `source_uri` must fit its `source_type` and parse as a URL with a host, a `cursor`
#   must decode, a job must exist), so a request valid by the schema may rightly get a
#   422 or a 404.
# - ignored_auth: the app runs open here (no CHUTE_API_KEYS), where a key is optional by
#   design; the tests of API keys are elsewhere.


def excluded_checks(case: schemathesis.Case) -> list[Any]:
    """The checks of `CHECKS` that do not apply to `case`."""
    excluded: list[Any] = []
    body = _mode(case, ParameterLocation.BODY)
    if case.operation.path == "/api/v1/upload" and body is GenerationMode.NEGATIVE:
        # Every multipart value is bytes on the wire: a `file` drawn as a JSON object of
        # the "wrong type" is still a file, and rightly stored. The upload tests of
        # test_fuzz.py send refused bodies instead.
        excluded.append(checks.negative_data_rejection)
    return excluded


# -- cases that name real things ----------------------------------------------------------

SOURCES = {"url": "https://example.org/report.pdf", "s3": "s3://bucket/reports/report.pdf"}


def _mode(case: schemathesis.Case, location: ParameterLocation) -> GenerationMode | None:
    """Whether this part of `case` was drawn valid or invalid (None: not drawn)."""
    component = case.meta.components.get(location) if case.meta else None
    return None if component is None else component.mode


def _valid(case: schemathesis.Case, location: ParameterLocation) -> bool:
    return _mode(case, location) is GenerationMode.POSITIVE


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


def _fitting(values: Any) -> None:
    """Make the drawn values in `values` that the schema cannot describe fully ones the
    server takes: a source that fits its type, a media type, the seeded jobs' worker,
    no made-up cursor."""
    if not isinstance(values, dict):
        return
    source_type = values.get("source_type")  # a list in a query
    if isinstance(source_type, str) and source_type in SOURCES and "source_uri" in values:
        values["source_uri"] = SOURCES[source_type]
    if values.get("mime_type") is not None:
        values["mime_type"] = "application/pdf"
    if isinstance(values.get("worker_id"), str):
        values["worker_id"] = WORKER
    values.pop("cursor", None)  # only the server makes cursors
    for job in values.get("jobs") or []:
        _fitting(job)


def _realistic(case: schemathesis.Case, job_id: str) -> schemathesis.Case:
    """`case` with its valid parts made real: the job it names exists, and values the
    schema cannot fully describe fit (invalid parts stay as drawn, so stay invalid)."""
    path = case.path_parameters
    if path and _is_uuid(path.get("job_id")) and _valid(case, ParameterLocation.PATH):
        case.path_parameters = {**path, "job_id": job_id}
    if _valid(case, ParameterLocation.QUERY):
        _fitting(case.query)
    if _valid(case, ParameterLocation.BODY):
        _fitting(case.body)
    return case


def _without_waiting(case: schemathesis.Case) -> schemathesis.Case:
    """`case` without a `wait` the server would honour: it holds the answer for up to a
    minute when the job does not end (tested in tests/e2e/test_stream_processes.py)."""
    query = case.query
    if isinstance(query, dict) and _whole(query.get("wait")):
        case.query = {key: value for key, value in query.items() if key != "wait"}
    return case


def _whole(value: object) -> bool:
    try:
        return 1 <= float(str(value)) <= 60
    except ValueError:
        return False


@schema.hook
def flatmap_case(context: Any, case: schemathesis.Case) -> Any:
    """Half of the cases name real things: drawn ids and URIs almost never do, and the
    success paths (and what follows them) would go untried."""
    case = _without_waiting(case)
    if not KNOWN_IDS:
        return st.just(case)
    real = st.sampled_from(KNOWN_IDS).map(lambda job_id: _realistic(case, job_id))
    return st.one_of(st.just(case), real)


# -- jobs to name ---------------------------------------------------------------------------


def seed_jobs(client: Any) -> list[str]:
    """Make jobs in every status the API can reach, and an upload, through `client` (a
    `requests`-like client of the app); return their ids."""

    def post(path: str, status: int = 200, **kwargs: Any) -> Any:
        response = client.post(path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def running() -> str:
        post("/api/v1/jobs", 201, json={"source_type": "url", "source_uri": SOURCES["url"]})
        claim = {"worker_id": WORKER, "lease_seconds": 3600}
        (job,) = post("/api/v1/jobs/claim", json=claim)["jobs"]
        return str(job["id"])

    completed, failed, held = running(), running(), running()
    post(f"/api/v1/jobs/{completed}/complete", json={"worker_id": WORKER, "result": {"ok": 1}})
    final = {"worker_id": WORKER, "error": "broken", "retryable": False}
    post(f"/api/v1/jobs/{failed}/fail", json=final)
    s3 = {"source_type": "s3", "source_uri": SOURCES["s3"], "priority": "high"}
    pending = post("/api/v1/jobs", 201, json=s3)["id"]
    cancelled = post("/api/v1/jobs", 201, json=s3)["id"]
    assert client.delete(f"/api/v1/jobs/{cancelled}").status_code == 200
    files = {"file": ("report.pdf", corpus.pdf(), "application/pdf")}
    (upload,) = post("/api/v1/upload", 201, files=files)["jobs"]
    return [completed, failed, held, pending, cancelled, str(upload["id"])]
