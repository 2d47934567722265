"""The S3 reader's stream guard and error wording, on made-up streams: no network.

What a real server does (missing keys and buckets, refused credentials, a server away,
oversized objects) is in tests/integration/test_s3_ingest.py; here are the cases a test
server cannot be made to answer: 5xx and 4xx statuses, timeouts, and an object that
turns out longer than its headers said.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chute.adapters.ingest import S3SourceReader
from chute.adapters.s3 import S3Connection, S3Failure
from chute.application.worker import JobFailed
from chute.domain import SourceType
from obstore.exceptions import GenericError

from tests.factories import make_job

URI = "s3://reports/2026/q1.pdf"
SECRET = "the-secret-access-key"


def reader(max_bytes: int = 10_500) -> S3SourceReader:
    connection = S3Connection(
        endpoint_url="http://s3.internal:9000", access_key_id="id", secret_access_key=SECRET
    )
    return S3SourceReader(connection, max_bytes=max_bytes)


def answer(status: str, code: str, message: str) -> str:
    """An obstore error text as it comes: a summary line, then Rust's debug dump."""
    return (
        f"Generic S3 error: Error performing GET http://s3.internal:9000/reports/2026/q1.pdf "
        f'in 2ms - Server returned non-2xx status code: {status}: <?xml version="1.0"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>\n\nDebug source:\n"
        'Generic {\n    store: "S3",\n    source: RetryError(...),\n}'
    )


async def test_reading_stops_at_the_chunk_that_crosses_the_limit() -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:  # longer than any header said
        nonlocal pulled
        while True:
            pulled += 1
            yield bytes(1000)

    received = []
    with pytest.raises(JobFailed) as refused:
        async for chunk in reader(max_bytes=10_500).limited(endless(), URI):
            received.append(chunk)
    assert str(refused.value) == f"{URI} is larger than 10500 bytes"
    assert refused.value.retryable is False
    assert (len(received), pulled) == (10, 11)  # nothing past the chunk that crossed


async def failing(error: Exception) -> AsyncIterator[bytes]:
    yield b"first"
    raise error


@pytest.mark.parametrize(
    ("error", "message", "retryable"),
    [
        (
            GenericError(answer("503 Service Unavailable", "SlowDown", "Reduce your rate.")),
            f"reading {URI}, S3 answered 503 (SlowDown: Reduce your rate.)",
            True,
        ),
        (
            GenericError(answer("429 Too Many Requests", "TooManyRequests", "Wait.")),
            f"reading {URI}, S3 answered 429 (TooManyRequests: Wait.)",
            True,
        ),
        (
            GenericError(answer("400 Bad Request", "InvalidRequest", "No &amp; never.")),
            f"reading {URI}, S3 answered 400 (InvalidRequest: No & never.)",
            False,
        ),
        (
            GenericError(
                "Generic S3 error: error decoding response body\n\nDebug source:\n"
                "reqwest::Error { kind: Decode, source: TimedOut }"
            ),
            f"could not reach S3 at http://s3.internal:9000 to read {URI}: timed out",
            True,
        ),
        (
            GenericError(f"Generic S3 error: signing with {SECRET} failed"),
            f"could not reach S3 at http://s3.internal:9000 to read {URI}: signing with *** failed",
            True,
        ),
    ],
)
async def test_errors_while_streaming_are_job_failures_a_user_can_read(
    error: Exception, message: str, retryable: bool
) -> None:
    with pytest.raises(JobFailed) as failed:
        async for _ in reader().limited(failing(error), URI):
            pass
    assert (str(failed.value), failed.value.retryable) == (message, retryable)


def test_a_missing_bucket_is_told_from_a_missing_key() -> None:
    text = answer("404 Not Found", "NoSuchBucket", "The specified bucket does not exist")
    failure = S3Failure.of(FileNotFoundError(text))
    assert (failure.kind, failure.no_bucket, failure.retryable) == ("missing", True, False)
    assert failure.said == "NoSuchBucket: The specified bucket does not exist"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://reports/2026/", "cannot read s3://reports/2026/: it names a folder, not an object"),
        (
            "s3://reports/a//b.pdf",
            'cannot read s3://reports/a//b.pdf: Could not parse path: Path "a//b.pdf" '
            "contained empty path segment",
        ),
    ],
)
async def test_keys_that_name_no_object_fail_for_good_before_any_request(
    uri: str, message: str
) -> None:
    job = make_job(source_type=SourceType.S3, source_uri=uri)
    with pytest.raises(JobFailed) as failed:
        async with reader().open(job):
            pytest.fail("opened")
    assert (str(failed.value), failed.value.retryable) == (message, False)


async def test_settings_obstore_refuses_fail_for_good_saying_which() -> None:
    connection = S3Connection(secret_access_key=SECRET)  # and no key id
    job = make_job(source_type=SourceType.S3, source_uri=URI)
    with pytest.raises(JobFailed) as failed:
        async with S3SourceReader(connection, max_bytes=1).open(job):
            pytest.fail("opened")
    assert str(failed.value) == (
        f"cannot read {URI}: the S3 settings are refused (Missing AccessKeyId; "
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
    )
    assert failed.value.retryable is False


def test_no_credentials_at_all_is_said_so() -> None:
    text = (
        "Generic S3 error: Error performing PUT http://169.254.169.254/latest/api/token in "
        "1ms - Server returned non-2xx status code: 403 Forbidden: denied\n\nDebug source: ..."
    )
    failure = S3Failure.of(GenericError(text))
    assert (failure.kind, failure.retryable) == ("no-credentials", False)
