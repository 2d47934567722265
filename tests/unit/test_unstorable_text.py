"""Text no database stores (NUL, unpaired surrogates) is refused by one domain rule,
in every string the engine takes from a client or a worker, before anything changes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from chute.adapters.ingest.fetcher import _filename
from chute.adapters.memory import MemoryDatabase, MemoryFileStore
from chute.adapters.system import SystemClock, UuidV7Generator
from chute.application import (
    ClaimFilter,
    JobFilter,
    NewJob,
    OrchestrationEngine,
    UploadFile,
    UploadOptions,
    ValidationFailed,
)
from chute.domain import InvalidValue, Job, JobStatus, SourceType
from chute.domain import validation as rules

from tests.factories import make_new_job

BAD = {"nul": "a\x00b", "surrogate": "a\ud800b", "low-surrogate": "\udfff", "pair": "\ud83d\ude00"}


@pytest.fixture(params=list(BAD))
def bad(request: pytest.FixtureRequest) -> str:
    return BAD[request.param]


def filled(item: Any, bad: str) -> Any:
    """`item` with `{bad}` in its strings and keys, at any depth, replaced by `bad`."""
    if isinstance(item, dict):
        return {filled(key, bad): filled(value, bad) for key, value in item.items()}
    if isinstance(item, list):
        return [filled(value, bad) for value in item]
    return item.replace("{bad}", bad) if isinstance(item, str) else item


# -- the rule ------------------------------------------------------------------------------


def test_check_text_refuses_nul_and_surrogates_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        rules.check_text("name", bad)
    assert (refused.value.field, refused.value.message) == ("name", rules.UNSTORABLE_TEXT)


@pytest.mark.parametrize("text", ["", "plain", "é名🙂", "\\u0000", "\x01\x7f\u2028", "\ufffd"])
def test_check_text_takes_any_other_text(text: str) -> None:
    assert rules.check_text("name", text) == text


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"k": "{bad}"}, 'the string at metadata["k"]'),
        ({"{bad}": 1}, "a key of metadata"),
        ({"a": [1, {"b": ["ok", "{bad}"]}]}, 'the string at metadata["a"][1]["b"][1]'),
        ({"a": {"{bad}": None}}, 'a key of metadata["a"]'),
    ],
)
def test_json_values_are_walked_at_any_depth_keys_included(
    bad: str, value: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        rules.check_metadata(filled(value, bad))
    assert refused.value.field == "metadata"
    assert refused.value.message == f"{rules.UNSTORABLE_TEXT}: {where}"
    with pytest.raises(InvalidValue) as refused:
        rules.check_result(filled(value, bad))
    assert refused.value.field == "result"


def test_json_that_only_spells_an_escape_is_taken() -> None:
    value = {"text": "\\u0000", "\\u0000": "C:\\new\\u0000"}
    assert rules.check_metadata(value) == value


@pytest.mark.parametrize(
    "check",
    [
        lambda text: rules.check_worker_id(text),
        lambda text: rules.check_error(text),
        lambda text: rules.check_idempotency_key(text),
        lambda text: rules.check_source_uri(SourceType.URL, f"https://example.org/{text}"),
        lambda text: rules.check_source_uri(SourceType.S3, f"s3://bucket/{text}"),
    ],
    ids=["worker_id", "error", "idempotency_key", "url", "s3"],
)
def test_every_rule_on_text_applies_it(bad: str, check: Callable[[str], object]) -> None:
    with pytest.raises(InvalidValue) as refused:
        check(bad)
    assert refused.value.message == rules.UNSTORABLE_TEXT


# -- the engine ----------------------------------------------------------------------------


@pytest.fixture
def engine() -> OrchestrationEngine:
    return OrchestrationEngine(
        uow=MemoryDatabase(),
        files=MemoryFileStore(),
        detectors={},
        clock=SystemClock(),
        ids=UuidV7Generator(),
    )


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def running(engine: OrchestrationEngine) -> Job:
    await engine.create_job(make_new_job())
    [job] = await engine.claim_jobs("w1")
    return job


async def refused(call: Awaitable[object]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationFailed) as raised:
        await call
    return [error.loc for error in raised.value.errors]


async def assert_unchanged(engine: OrchestrationEngine, job: Job | None = None) -> None:
    page = await engine.list_jobs()
    assert page.total == (0 if job is None else 1)
    if job is not None:
        now = await engine.get_job(job.id)
        assert (now.status, now.updated_at, now.last_error) == (
            job.status,
            job.updated_at,
            job.last_error,
        )
        assert len(await engine.list_job_events(job.id)) == 2  # created, claimed


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"source_uri": "https://example.org/{bad}"}, ("source_uri",)),
        ({"file_name": "{bad}.pdf"}, ("file_name",)),
        ({"metadata": {"k": "{bad}"}}, ("metadata",)),
        ({"metadata": {"{bad}": "v"}}, ("metadata",)),
    ],
)
async def test_create_refuses_unstorable_text(
    engine: OrchestrationEngine, bad: str, fields: dict[str, Any], loc: tuple[str, ...]
) -> None:
    spec = make_new_job(**filled(fields, bad))
    assert await refused(engine.create_job(spec)) == [loc]
    assert await refused(engine.create_jobs([make_new_job(), spec])) == [(1, *loc)]
    await assert_unchanged(engine)


async def test_an_idempotency_key_with_unstorable_text_is_refused(
    engine: OrchestrationEngine, bad: str
) -> None:
    assert await refused(engine.create_job(make_new_job(), idempotency_key=bad)) == [
        ("idempotency_key",)
    ]
    batch = engine.create_jobs([make_new_job()], idempotency_key=bad)
    assert await refused(batch) == [("idempotency_key",)]
    await assert_unchanged(engine)


async def test_uploads_refuse_unstorable_file_names_and_metadata(
    engine: OrchestrationEngine, bad: str
) -> None:
    good = UploadFile(filename="a.pdf", content=chunks(b"%PDF"))
    named = UploadFile(filename=f"{bad}.pdf", content=chunks(b"%PDF"))
    assert await refused(engine.submit_upload([good, named])) == [("file", 1, "filename")]
    plain = UploadFile(filename="a.pdf", content=chunks(b"%PDF"))
    options = UploadOptions(metadata={"k": bad})
    assert await refused(engine.submit_upload([plain], options)) == [("metadata",)]
    await assert_unchanged(engine)
    files = engine._files
    assert isinstance(files, MemoryFileStore) and not files._files  # nothing stored


@pytest.mark.parametrize(
    ("call", "loc"),
    [
        (lambda e, job, bad: e.heartbeat(job.id, "w1", progress_message=bad), "progress_message"),
        (lambda e, job, bad: e.heartbeat(job.id, bad), "worker_id"),
        (lambda e, job, bad: e.complete_job(job.id, "w1", result={"k": bad}), "result"),
        (lambda e, job, bad: e.complete_job(job.id, "w1", result={bad: 1}), "result"),
        (lambda e, job, bad: e.complete_job(job.id, bad), "worker_id"),
        (lambda e, job, bad: e.fail_job(job.id, "w1", f"boom {bad}"), "error"),
        (lambda e, job, bad: e.fail_job(job.id, bad, "boom"), "worker_id"),
        (lambda e, job, bad: e.release_job(job.id, bad), "worker_id"),
        (
            lambda e, job, bad: e.store_content(job.id, "w1", bad, chunks(b"x")),
            "filename",
        ),
        (lambda e, job, bad: e.update_job_status(job.id, JobStatus.FAILED, error=bad), "error"),
        (
            lambda e, job, bad: e.update_job_status(job.id, JobStatus.FAILED, actor=bad),
            "actor",
        ),
    ],
)
async def test_worker_reports_refuse_unstorable_text(
    engine: OrchestrationEngine,
    bad: str,
    call: Callable[[OrchestrationEngine, Job, str], Awaitable[object]],
    loc: str,
) -> None:
    job = await running(engine)
    assert await refused(call(engine, job, bad)) == [(loc,)]
    now = await engine.get_job(job.id)
    assert (now.status, now.progress_message, now.result, now.content_key) == (
        JobStatus.RUNNING,
        None,
        None,
        None,
    )
    assert len(await engine.list_job_events(job.id)) == 2  # created, claimed


async def test_complete_jobs_refuses_only_the_job_whose_result_is_unstorable(
    engine: OrchestrationEngine, bad: str
) -> None:
    await engine.create_jobs([make_new_job() for _ in range(3)])
    jobs = await engine.claim_jobs("w1", limit=3)
    results = [{"n": 0}, {"n": bad}, {"n": 2}]
    outcomes = await engine.complete_jobs(
        "w1", [(job.id, result) for job, result in zip(jobs, results, strict=True)]
    )
    assert [type(outcome) for outcome in outcomes] == [Job, ValidationFailed, Job]
    assert (await engine.get_job(jobs[1].id)).status is JobStatus.RUNNING


async def test_claims_and_lists_refuse_unstorable_text(
    engine: OrchestrationEngine, bad: str
) -> None:
    await engine.create_job(make_new_job())
    assert await refused(engine.claim_jobs(bad)) == [("worker_id",)]
    claim = engine.claim_jobs("w1", filter=ClaimFilter(mime_type=f"text/{bad}"))
    assert await refused(claim) == [("mime_type",)]
    listing = engine.list_jobs(filter=JobFilter(mime_type=f"{bad}/*"))
    assert await refused(listing) == [("mime_type",)]
    assert await refused(engine.list_jobs(cursor=f"abc{bad}")) == [("cursor",)]
    [job] = (await engine.list_jobs()).items
    assert job.status is JobStatus.PENDING


def test_new_job_problems_name_every_field_with_unstorable_text(bad: str) -> None:
    spec = NewJob(
        source_type=SourceType.URL,
        source_uri=f"https://example.org/{bad}",
        file_name=bad,
        metadata={"k": bad},
    )
    assert [error.loc for error in spec.problems()] == [
        ("source_uri",),
        ("file_name",),
        ("metadata",),
    ]


@pytest.mark.parametrize(
    ("disposition", "path", "name"),
    [
        (None, "/files/re%00port.pdf", "report.pdf"),
        (None, "/files/re%ED%A0%80port.pdf", "report.pdf"),  # a surrogate, as WTF-8
        ("attachment; filename*=UTF-8''re%00port.pdf", "/download", "report.pdf"),
        (None, "/files/%00", None),
    ],
)
def test_names_remote_servers_give_lose_what_no_database_stores(
    disposition: str | None, path: str, name: str | None
) -> None:
    # The ingest processor stores what it fetched under such a name: the engine would
    # refuse it, and the job fail for the server's quirk.
    headers = {"content-disposition": disposition} if disposition else {}
    response = httpx.Response(200, headers=headers)
    assert _filename(response, httpx.URL(f"https://example.org{path}")) == name
