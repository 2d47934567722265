"""The value rules that every entrypoint shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from chute.application import safe_filename
from chute.domain import InvalidValue, QueueSettings, SourceType
from chute.domain import validation as rules


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.org/report.pdf",
        "http://example.org",
        "https://[::1]:8080/x?q=1#f",
        "https://例え.jp/ファイル",
    ],
)
def test_url_sources_accept_absolute_http_urls(uri: str) -> None:
    assert rules.check_source_uri(SourceType.URL, uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://example.org/a",
        "example.org/a",
        "https:///path",
        "https://user:pw@example.org/",
        "https://user@example.org/",
        "https://example.org:99999/",
        "https://exa mple.org/",
        "https://example.org/\n",
        "s3://bucket/key",
        "https://example.org/" + "a" * 2049,
    ],
)
def test_url_sources_refuse_anything_else(uri: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        rules.check_source_uri(SourceType.URL, uri)
    assert refused.value.field == "source_uri"


@pytest.mark.parametrize("uri", ["s3://my-bucket/key", "s3://a.b.c/deep/key.pdf", "s3://abc/k"])
def test_s3_sources_accept_valid_buckets(uri: str) -> None:
    assert rules.check_source_uri(SourceType.S3, uri) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "s3://bucket",
        "s3://bucket/",
        "s3://ab/key",
        "s3://Bucket/key",
        "s3://a..b/key",
        "s3://192.168.1.1/key",
        "s3://-bucket/key",
        "https://bucket/key",
        "s3://" + "a" * 64 + "/k",
    ],
)
def test_s3_sources_refuse_bad_buckets_and_keys(uri: str) -> None:
    with pytest.raises(InvalidValue):
        rules.check_source_uri(SourceType.S3, uri)


def test_upload_sources_cannot_be_made_by_reference() -> None:
    with pytest.raises(InvalidValue) as refused:
        rules.check_source_uri(SourceType.UPLOAD, "upload://x/y")
    assert refused.value.field == "source_type"


def test_metadata_is_a_json_object_of_at_most_16_kib() -> None:
    rules.check_metadata({"k": "x" * (16 * 1024 - 10)})
    with pytest.raises(InvalidValue):
        rules.check_metadata({"k": "x" * (16 * 1024)})
    with pytest.raises(InvalidValue):
        rules.check_metadata(["not", "an", "object"])


def test_metadata_size_counts_utf8_bytes() -> None:
    with pytest.raises(InvalidValue):
        rules.check_metadata({"k": "é" * 8200})  # 16,400 bytes, 8,200 characters


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (20, True), (21, False)])
def test_max_attempts_lies_in_one_to_twenty(value: int, ok: bool) -> None:
    if ok:
        assert rules.check_max_attempts(value) == value
    else:
        with pytest.raises(InvalidValue):
            rules.check_max_attempts(value)


def test_mime_patterns() -> None:
    assert rules.check_mime_type("Application/PDF") == "application/pdf"
    assert rules.check_mime_pattern("image/*") == "image/*"
    for bad in ("pdf", "image/", "*/*", "a/b/c", "text/plain; charset=x"):
        with pytest.raises(InvalidValue):
            rules.check_mime_type(bad)
    assert rules.mime_matches("image/png", "image/*")
    assert not rules.mime_matches("imagery/png", "image/*")
    assert not rules.mime_matches(None, "image/*")


@pytest.mark.parametrize("check", [rules.check_mime_type, rules.check_mime_pattern])
def test_a_media_type_with_a_trailing_newline_is_refused(check: Callable[[str], str]) -> None:
    # `$` alone matches before a final newline, which would then reach a header.
    with pytest.raises(InvalidValue):
        check("application/pdf\n")


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/x.txt", "x.txt"),
        ("....", "upload.bin"),
        ("..", "upload.bin"),
        ("", "upload.bin"),
        (None, "upload.bin"),
        ("dir/", "upload.bin"),
        (".bashrc", "bashrc"),
        ("a\x00b\x1fc\x7f.txt", "abc.txt"),
        ("\x00.hidden", "hidden"),
        ("résumé.pdf", "résumé.pdf"),
    ],
)
def test_safe_filename(given: str | None, safe: str) -> None:
    assert safe_filename(given) == safe


def test_safe_filename_cuts_at_255_bytes_on_a_character_boundary() -> None:
    name = "é" * 200  # 400 bytes
    cut = safe_filename(name)
    assert cut == "é" * 127 and len(cut.encode()) == 254


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {"a": float("nan")},
        {"a": [float("inf")]},
        {"deep": nested(70)},
    ],
)
def test_json_objects_refuse_what_json_cannot_carry(value: dict[str, object]) -> None:
    for check in (rules.check_metadata, rules.check_result):
        with pytest.raises(InvalidValue):
            check(value)


def test_cursor_filters_match_the_same_instant_written_with_another_offset() -> None:
    from datetime import datetime

    from chute.application import JobFilter

    utc = JobFilter(created_after=datetime.fromisoformat("2026-01-01T00:00:00+00:00"))
    paris = JobFilter(created_after=datetime.fromisoformat("2026-01-01T01:00:00+01:00"))
    assert utc.fingerprint() == paris.fingerprint()


@pytest.mark.parametrize("name", ["default", "a", "mail.out_2-b", "x" * 64, "0", "..", "-"])
def test_queue_names_are_1_to_64_of_lowercase_digits_and_three_marks(name: str) -> None:
    assert rules.check_queue_name(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "Mail", "a b", "a/b", "é", "a\n", "a:b"])
def test_other_queue_names_are_refused_naming_the_field(name: str) -> None:
    with pytest.raises(InvalidValue) as e:
        rules.check_queue_name(name)
    assert e.value.field == "queue"


def test_run_after_may_be_past_or_up_to_366_days_ahead() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for moment in (now - timedelta(days=9999), now, now + timedelta(days=366)):
        assert rules.check_run_after(moment, now) == moment
    assert rules.check_run_after(None, now) is None
    with pytest.raises(InvalidValue, match="366 days"):
        rules.check_run_after(now + timedelta(days=366, microseconds=1), now)
    with pytest.raises(InvalidValue, match="offset"):
        rules.check_run_after(datetime(2026, 1, 2), now)  # naive


def test_a_paused_queue_has_no_room_and_a_limited_one_what_is_left() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert QueueSettings(name="q", updated_at=now).capacity(99) is None
    assert QueueSettings(name="q", paused=True, updated_at=now).capacity(0) == 0
    limited = QueueSettings(name="q", concurrency_limit=3, updated_at=now)
    assert [limited.capacity(held) for held in (0, 2, 3, 5)] == [3, 1, 0, 0]
