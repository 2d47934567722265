"""CHUTE_STORAGE_URL: a folder, a file:// URL or s3://bucket/prefix, and the store the
container builds from it (nothing is connected to)."""

from __future__ import annotations

import pytest
from chute.adapters.storage import LocalFileStore, S3FileStore
from chute.entrypoints.bootstrap import build_container
from chute.entrypoints.settings import Settings, StorageLocation, setting_errors
from pydantic import ValidationError


@pytest.fixture(autouse=True)
def no_storage_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUTE_STORAGE_URL", raising=False)
    monkeypatch.delenv("CHUTE_STORAGE_DIR", raising=False)


def test_storage_is_the_folder_tmp_pipeline_by_default() -> None:
    assert Settings().storage == StorageLocation(url="/tmp/pipeline", path="/tmp/pipeline")


def test_the_older_storage_dir_setting_still_names_the_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHUTE_STORAGE_DIR", "/srv/files")
    assert Settings().storage.path == "/srv/files"
    monkeypatch.setenv("CHUTE_STORAGE_URL", "/srv/other")  # the new setting wins
    assert Settings().storage.path == "/srv/other"


@pytest.mark.parametrize(
    ("url", "path", "bucket", "prefix"),
    [
        ("./var/files", "./var/files", None, ""),
        ("file:///srv/my%20files", "/srv/my files", None, ""),
        ("file://localhost/srv", "/srv", None, ""),
        ("s3://bucket", None, "bucket", ""),
        ("s3://my.bucket/a/b/", None, "my.bucket", "a/b"),
    ],
)
def test_storage_url_names_a_folder_or_a_bucket_and_prefix(
    monkeypatch: pytest.MonkeyPatch, url: str, path: str | None, bucket: str | None, prefix: str
) -> None:
    monkeypatch.setenv("CHUTE_STORAGE_URL", url)
    location = Settings().storage
    assert location == StorageLocation(url=url, path=path, bucket=bucket, prefix=prefix)
    assert location.kind == ("local" if path else "s3")


@pytest.mark.parametrize(
    "url",
    ["", "http://example.org/x", "s3://", "s3://Upper_Case/x", "s3://key:secret@bucket/x",
     "file://elsewhere/srv", "file://"],
)  # fmt: skip
def test_a_bad_storage_url_is_refused_by_name_without_its_value(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("CHUTE_STORAGE_URL", url)
    with pytest.raises(ValidationError) as refused:
        Settings()
    [line] = setting_errors(refused.value)
    assert line.startswith("CHUTE_STORAGE_URL: ")
    for part in ("secret", "example.org", "Upper_Case", "elsewhere"):  # of the values
        assert part not in line


def test_the_container_builds_the_store_the_url_names() -> None:
    local = build_container(Settings(storage_url="file:///srv/files")).file_store()
    assert isinstance(local, LocalFileStore) and str(local.root) == "/srv/files"
    s3 = build_container(Settings(storage_url="s3://bucket/prefix")).file_store()
    assert isinstance(s3, S3FileStore)
