"""Uploading files over HTTP onto a real storage folder, checking the disk after each request."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chute.adapters.storage.local import LocalFileStore
from chute.application import FileStore, UploadLimits
from chute.entrypoints.bootstrap import Container
from dependency_injector import providers

from tests import corpus
from tests.e2e.helpers import assert_problem, error_locs

BOUNDARY = "chute-test-boundary-7f3a"
PDF, PNG = corpus.pdf(), corpus.png()


@pytest.fixture
def file_store(storage: Path) -> FileStore:
    return LocalFileStore(storage)


def set_limits(container: Container, **limits: Any) -> None:
    container.limits.override(providers.Object(UploadLimits(**limits)))


# -- building multipart bodies by hand, so that malformed ones can be sent too -------------


def part(
    name: str | None,
    data: bytes,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    disposition: str | None = None,
) -> bytes:
    """One part; `disposition` replaces the whole Content-Disposition value when given."""
    if disposition is None:
        disposition = "form-data" + (f'; name="{name}"' if name is not None else "")
        if filename is not None:
            disposition += f'; filename="{filename}"'
    headers = f"Content-Disposition: {disposition}\r\n"
    if content_type:
        headers += f"Content-Type: {content_type}\r\n"
    return headers.encode() + b"\r\n" + data


def file_part(data: bytes, filename: str = "file.bin", content_type: str | None = None) -> bytes:
    return part("file", data, filename=filename, content_type=content_type)


def field(name: str, value: str) -> bytes:
    return part(name, value.encode())


def opening(disposition: str, *headers: str) -> bytes:
    """The first delimiter and the headers of a part, for bodies written byte by byte."""
    lines = [f"--{BOUNDARY}", f"Content-Disposition: {disposition}", *headers, "", ""]
    return "\r\n".join(lines).encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart(*parts: bytes, boundary: str = BOUNDARY) -> bytes:
    delimiter = f"--{boundary}".encode()
    body = b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts)
    return body + delimiter + b"--\r\n"


async def upload(
    client: httpx.AsyncClient, body: bytes, content_type: str | None = None
) -> httpx.Response:
    headers = {"content-type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}
    return await client.post("/api/v1/upload", content=body, headers=headers)


async def job_count(client: httpx.AsyncClient) -> int:
    total: int = (await client.get("/api/v1/jobs")).json()["total"]
    return total


def stored_paths(storage: Path) -> list[Path]:
    """Everything under the storage folder, files and folders alike."""
    return sorted(storage.rglob("*")) if storage.exists() else []


async def assert_nothing_kept(client: httpx.AsyncClient, storage: Path) -> None:
    assert await job_count(client) == 0
    assert stored_paths(storage) == []


# -- accepted uploads ------------------------------------------------------------------------


async def test_one_file_is_stored_detected_and_made_a_job(
    client: httpx.AsyncClient, storage: Path
) -> None:
    response = await upload(client, multipart(file_part(PDF, "report.pdf", "application/pdf")))

    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    assert (job["source_type"], job["status"], job["file_name"]) == (
        "upload",
        "pending",
        "report.pdf",
    )
    assert job["source_uri"] == f"upload://{job['id']}/report.pdf"
    assert (job["file_size"], job["mime_type"]) == (len(PDF), "application/pdf")
    detection = job["detection"]
    assert (detection["mime_type"], detection["size"]) == ("application/pdf", len(PDF))
    assert detection["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert detection["detected_at"].endswith("Z")
    assert (storage / job["id"] / "report.pdf").read_bytes() == PDF
    assert stored_paths(storage) == [storage / job["id"], storage / job["id"] / "report.pdf"]
    stored = await client.get(f"/api/v1/jobs/{job['id']}")
    assert stored.json() == job


async def test_several_files_become_jobs_in_request_order(
    client: httpx.AsyncClient, storage: Path
) -> None:
    files = [(PNG, "b.png"), (PDF, "a.pdf"), (corpus.text(), "c.txt")]
    body = multipart(*(file_part(data, name) for data, name in files))

    response = await upload(client, body)

    jobs = response.json()["jobs"]
    assert [job["file_name"] for job in jobs] == ["b.png", "a.pdf", "c.txt"]
    assert [job["mime_type"] for job in jobs] == ["image/png", "application/pdf", "text/plain"]
    for job, (data, name) in zip(jobs, files, strict=True):
        assert (storage / job["id"] / name).read_bytes() == data


async def test_the_declared_content_type_is_never_trusted(client: httpx.AsyncClient) -> None:
    body = multipart(file_part(PNG, "fake.pdf", "application/pdf"))

    response = await upload(client, body)

    [job] = response.json()["jobs"]
    assert job["mime_type"] == job["detection"]["mime_type"] == "image/png"


async def test_text_fields_apply_to_every_file(client: httpx.AsyncClient) -> None:
    fields = [("priority", "urgent"), ("mode", "fast"), ("metadata", '{"tenant": "acme"}')]
    body = multipart(*(field(n, v) for n, v in fields), file_part(PDF), file_part(PNG))

    jobs = (await upload(client, body)).json()["jobs"]

    for job in jobs:
        assert (job["priority"], job["mode"], job["metadata"]) == (
            "urgent",
            "fast",
            {"tenant": "acme"},
        )


async def test_without_detection_the_declared_type_is_kept_as_the_clients_claim(
    client: httpx.AsyncClient,
) -> None:
    body = multipart(
        field("detect", "false"),
        file_part(PNG, "a.png", "Image/PNG"),
        file_part(corpus.text(), "b.txt", "text/plain; charset=utf-8"),
        file_part(PDF, "c.pdf", "not a type"),
        file_part(PDF, "d.pdf"),
    )

    jobs = (await upload(client, body)).json()["jobs"]

    assert [job["mime_type"] for job in jobs] == ["image/png", "text/plain", None, None]
    assert all(job["detection"] is None for job in jobs)


@pytest.mark.parametrize("detect", ["true", "false"])
async def test_a_type_outside_allowed_types_is_refused_even_without_detection(
    container: Container, client: httpx.AsyncClient, storage: Path, detect: str
) -> None:
    set_limits(container, allowed_types=("application/pdf", "text/*"))
    body = multipart(
        field("detect", detect), file_part(PDF), file_part(PNG, "x.pdf", "application/pdf")
    )

    response = await upload(client, body)

    assert_problem(response, 415, "unsupported-media-type")
    await assert_nothing_kept(client, storage)


async def test_allowed_types_let_matching_files_through(
    container: Container, client: httpx.AsyncClient
) -> None:
    set_limits(container, allowed_types=("application/pdf", "image/*"))
    body = multipart(
        field("detect", "false"), file_part(PDF, "a.pdf", "text/plain"), file_part(PNG)
    )

    response = await upload(client, body)

    assert response.status_code == 201
    assert [job["mime_type"] for job in response.json()["jobs"]] == ["text/plain", None]


async def test_a_file_of_exactly_the_size_limit_is_accepted(
    container: Container, client: httpx.AsyncClient
) -> None:
    set_limits(container, max_file_bytes=len(PDF))

    response = await upload(client, multipart(file_part(PDF)))

    assert response.status_code == 201


# -- safe names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposition", "safe_name"),
    [
        ('form-data; name="file"; filename="../../etc/passwd"', "passwd"),
        ('form-data; name="file"; filename="..\\\\..\\\\win.ini"', "win.ini"),  # escaped
        ('form-data; name="file"; filename="C:\\Users\\me\\report.pdf"', "report.pdf"),  # raw
        ('form-data; name="file"; filename="/abs/path"', "path"),
        ('form-data; name="file"; filename="...."', "upload.bin"),
        ('form-data; name="file"; filename="../.."', "upload.bin"),
        ('form-data; name="file"; filename=".hidden"', "hidden"),
        ('form-data; name="file"; filename="a\x01b\x1fc.txt"', "abc.txt"),
        ("form-data; name=\"file\"; filename*=UTF-8''a%1Bb%0A%7Fc.txt", "abc.txt"),
        (
            'form-data; name="file"; filename="x.txt"; filename*=UTF-8\'\'%E2%82%AC%20r.pdf',
            "€ r.pdf",
        ),
        ('form-data; name="file"; filename=""', "upload.bin"),
        ('form-data; name="file"; filename="résumé.pdf"', "résumé.pdf"),
        ('form-data; name="file"; filename="' + "é" * 200 + '"', "é" * 127),
    ],
)
async def test_client_file_names_are_stored_safely_inside_their_folder(
    client: httpx.AsyncClient, storage: Path, disposition: str, safe_name: str
) -> None:
    body = multipart(part(None, PDF, disposition=disposition))

    response = await upload(client, body)

    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    assert job["file_name"] == safe_name
    assert job["source_uri"] == f"upload://{job['id']}/{safe_name}"
    path = storage / job["id"] / safe_name
    assert path.resolve().parent == (storage / job["id"]).resolve()
    assert path.read_bytes() == PDF
    assert stored_paths(storage) == [storage / job["id"], path]


# -- refused uploads: the status, and nothing left behind ------------------------------------


async def test_an_empty_file_is_refused(client: httpx.AsyncClient, storage: Path) -> None:
    response = await upload(client, multipart(file_part(PDF, "a.pdf"), file_part(b"", "b.pdf")))

    assert error_locs(response) == [["body", "file", 1]]
    await assert_nothing_kept(client, storage)


async def test_a_file_one_byte_over_the_limit_is_refused(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_file_bytes=len(PDF) - 1)

    response = await upload(client, multipart(file_part(PDF)))

    assert_problem(response, 413, "payload-too-large")
    await assert_nothing_kept(client, storage)


async def test_too_many_files_are_refused(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_files=2)

    response = await upload(client, multipart(*(file_part(PDF) for _ in range(3))))

    assert error_locs(response) == [["body", "file"]]
    await assert_nothing_kept(client, storage)


@pytest.mark.parametrize(
    ("parts", "loc"),
    [
        ([], ["body", "file"]),
        ([field("priority", "high")], ["body", "file"]),
        ([file_part(PDF), field("other", "x")], ["body", "other"]),
        ([file_part(PDF), part("files", PDF, filename="a.pdf")], ["body", "files"]),
        ([file_part(PDF), field("priority", "asap")], ["body", "priority"]),
        ([file_part(PDF), field("mode", "thorough")], ["body", "mode"]),
        ([file_part(PDF), field("detect", "yes")], ["body", "detect"]),
        ([file_part(PDF), field("detect", "True")], ["body", "detect"]),
        ([file_part(PDF), field("metadata", "[1, 2]")], ["body", "metadata"]),
        ([file_part(PDF), field("metadata", "{not json")], ["body", "metadata"]),
        ([file_part(PDF), field("metadata", '{"a": "' + "x" * 17000 + '"}')], ["body", "metadata"]),
        ([file_part(PDF), field("metadata", '{"a": NaN}')], ["body", "metadata"]),
        (
            [file_part(PDF), field("metadata", '{"a":' * 500 + "1" + "}" * 500)],
            ["body", "metadata"],
        ),
        ([file_part(PDF), field("metadata", "[" * 5000 + "]" * 5000)], ["body", "metadata"]),
        ([file_part(PDF), field("priority", "x" * (64 * 1024 + 1))], ["body", "priority"]),
        ([field("mode", "fast"), file_part(PDF), field("mode", "fast")], ["body", "mode"]),
        ([file_part(PDF), part("priority", b"high", filename="p.txt")], ["body", "priority"]),
        ([file_part(PDF), part(None, b"x")], ["body"]),
        ([file_part(PDF), part(None, b"x", disposition='attachment; name="file"')], ["body"]),
        ([file_part(PDF), b"Content-Type: text/plain\r\n\r\nno disposition"], ["body"]),
        ([file_part(PDF), part("priority", b"\xff\xfe")], ["body", "priority"]),
        ([part("file", b"/tmp/hello.pdf")], ["body", "file"]),  # curl -F file=/path
        ([file_part(PDF), part("file", b"/tmp/hello.pdf")], ["body", "file"]),
    ],
)
async def test_a_badly_shaped_upload_is_refused(
    client: httpx.AsyncClient, storage: Path, parts: list[bytes], loc: list[str]
) -> None:
    body = multipart(*parts)

    response = await upload(client, body)

    assert error_locs(response)[0] == loc
    await assert_nothing_kept(client, storage)


async def test_several_bad_fields_are_reported_together(
    client: httpx.AsyncClient, storage: Path
) -> None:
    body = multipart(file_part(PDF), field("priority", "asap"), field("detect", "no"))

    response = await upload(client, body)

    assert error_locs(response) == [["body", "priority"], ["body", "detect"]]


async def test_a_shape_error_after_an_oversized_file_wins(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_file_bytes=10)

    unknown = await upload(client, multipart(file_part(PDF), field("colour", "red")))
    bad_field = await upload(client, multipart(file_part(PDF), field("priority", "asap")))

    assert error_locs(unknown) == [["body", "colour"]]
    assert error_locs(bad_field) == [["body", "priority"]]
    await assert_nothing_kept(client, storage)


async def test_files_are_checked_in_order_empty_before_too_large(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_file_bytes=10)

    first_empty = await upload(client, multipart(file_part(b""), file_part(PDF)))
    first_large = await upload(client, multipart(file_part(PDF), file_part(b"")))

    assert error_locs(first_empty) == [["body", "file", 0]]
    assert_problem(first_large, 413, "payload-too-large")
    await assert_nothing_kept(client, storage)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/mixed; boundary=x",
    ],
)
async def test_a_body_that_is_not_multipart_form_data_is_415(
    client: httpx.AsyncClient, storage: Path, content_type: str
) -> None:
    response = await upload(client, b'{"file": "x"}', content_type)

    assert_problem(response, 415, "unsupported-media-type")
    await assert_nothing_kept(client, storage)


async def test_a_body_without_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/upload", content=b"data")

    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=" + "b" * 71,
    ],
)
async def test_a_missing_or_bad_boundary_is_422(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await upload(client, multipart(file_part(PDF)), content_type)

    assert error_locs(response) == [["header", "content-type"]]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage that is not multipart at all",
        multipart(file_part(PDF))[:-30],  # truncated inside the file
        multipart(file_part(PDF))[:40],  # truncated inside the headers
        multipart(file_part(PDF)).replace(b"--\r\n", b"\r\n"),  # no closing boundary
        multipart(file_part(PDF), boundary="another-boundary"),
        opening('form-data; name="file"', "bad header line") + b"x" + CLOSING,
        opening('form-data; name="file"', "X-Big: " + "h" * 17000) + b"x" + CLOSING,
    ],
)
async def test_a_malformed_multipart_body_is_422(
    client: httpx.AsyncClient, storage: Path, body: bytes
) -> None:
    response = await upload(client, body)

    assert_problem(response, 422, "validation-error")
    await assert_nothing_kept(client, storage)


async def test_a_body_larger_than_every_file_allowed_is_413_at_once(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_files=1, max_file_bytes=10)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield opening('form-data; name="file"; filename="big.bin"')
        for _ in range(64):  # 4 MiB, far beyond 10 bytes + 1 MiB of slack
            sent += 1
            yield b"x" * (64 * 1024)

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = await client.post("/api/v1/upload", content=chunks(), headers=headers)

    assert_problem(response, 413, "payload-too-large")
    assert sent < 64  # refused before the whole body was read
    await assert_nothing_kept(client, storage)


async def test_a_declared_content_length_beyond_the_limit_is_413(
    container: Container, client: httpx.AsyncClient, storage: Path
) -> None:
    set_limits(container, max_files=1, max_file_bytes=10)
    body = multipart(file_part(b"x" * (2 * 1024 * 1024)))

    response = await upload(client, body)

    assert_problem(response, 413, "payload-too-large")
    await assert_nothing_kept(client, storage)


# -- streaming -------------------------------------------------------------------------------


async def test_a_large_upload_streams_to_disk_without_being_held_in_memory(
    client: httpx.AsyncClient, storage: Path
) -> None:
    size, chunk = 30 * 1024 * 1024, bytes(range(256)) * 256  # 30 MiB in chunks of 64 KiB

    async def body() -> AsyncIterator[bytes]:
        yield opening('form-data; name="file"; filename="big.bin"')
        for _ in range(size // len(chunk)):
            yield chunk
        yield CLOSING

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    tracemalloc.start()
    try:
        response = await client.post("/api/v1/upload", content=body(), headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 201, response.text
    [job] = response.json()["jobs"]
    assert job["file_size"] == size
    assert (storage / job["id"] / "big.bin").stat().st_size == size
    assert peak < size / 6, f"peak traced memory {peak} bytes for a {size}-byte file"


async def test_a_file_part_without_a_filename_says_how_to_send_a_file(
    client: httpx.AsyncClient, storage: Path
) -> None:
    response = await upload(client, multipart(part("file", b"/tmp/hello.pdf")))

    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["type"] == "missing_filename"
    assert "-F file=@path" in problem["errors"][0]["msg"]
    await assert_nothing_kept(client, storage)
