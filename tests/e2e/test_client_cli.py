"""The client commands (`chute submit|jobs|queues|watch`) as a user runs them: the real
`chute` console script in a subprocess, with only CHUTE_URL and CHUTE_API_KEY set,
against a real `chute serve` on SQLite; their output, JSON and exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests import pg
from tests.client_cli import KEY, chute_script, client_env, run, run_json, served

pytestmark = pytest.mark.slow

AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with served(tmp_path_factory.mktemp("cli")) as chute:
        yield chute.base_url


def api(server: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server}/api/v1", headers=AUTH, timeout=30)


def test_submit_creates_jobs_of_files_urls_and_s3_objects(server: str, tmp_path: Path) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4\n%%EOF\n")
    found = run_json(
        server,
        "submit",
        str(report),
        "https://example.org/a.png",
        "s3://bucket/b.txt",
        "--queue",
        "cli-submit",
        "--priority",
        "high",
        "--metadata",
        "tenant=acme",
        "--metadata",
        "batch=7",
    )

    jobs = found["jobs"]
    assert sorted(job["source_type"] for job in jobs) == ["s3", "upload", "url"]
    assert {job["queue"] for job in jobs} == {"cli-submit"}
    assert {job["priority"] for job in jobs} == {"high"}
    assert all(job["metadata"] == {"tenant": "acme", "batch": 7} for job in jobs)
    [upload] = [job for job in jobs if job["source_type"] == "upload"]
    assert upload["file_name"] == "report.pdf" and upload["mime_type"] == "application/pdf"


def test_submit_prints_a_table_of_the_job_ids(server: str) -> None:
    done = run(server, "submit", "https://example.org/table.pdf", "--queue", "cli-table")

    assert done.returncode == 0, done.stderr
    with api(server) as client:
        [job] = client.get("/jobs", params={"queue": "cli-table"}).json()["items"]
    assert job["id"] in done.stdout and "https://example.org/table.pdf" in done.stdout


def test_submit_refuses_a_missing_file_before_sending_anything(server: str) -> None:
    done = run(server, "submit", "https://example.org/x.pdf", "/no/such/file", "--queue", "cli-no")

    assert done.returncode == 2
    assert "/no/such/file: no such file" in done.stderr and "Traceback" not in done.stderr
    with api(server) as client:
        assert client.get("/jobs", params={"queue": "cli-no"}).json()["items"] == []


def test_submit_of_an_invalid_value_prints_the_problem(server: str) -> None:
    done = run(server, "submit", "https://example.org/x.pdf", "--queue", "Not A Queue")

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "queue" in done.stderr


def test_jobs_list_filters_and_shows_json(server: str) -> None:
    run_json(
        server,
        "submit",
        *(f"https://example.org/{n}.pdf" for n in range(3)),
        "--queue",
        "cli-list",
        "--mode",
        "fast",
    )
    run_json(server, "submit", "https://example.org/other.pdf", "--queue", "cli-list")

    page = run_json(
        server,
        "jobs",
        "list",
        "--queue",
        "cli-list",
        "--mode",
        "fast",
        "--sort",
        "created_at",
        "--limit",
        "2",
    )
    assert [job["source_uri"] for job in page["items"]] == [
        "https://example.org/0.pdf",
        "https://example.org/1.pdf",
    ]
    assert page["total"] == 3 and page["next_cursor"]

    table = run(server, "jobs", "list", "--queue", "cli-list")
    assert table.returncode == 0, table.stderr
    assert "https://example.org/other.pdf" in table.stdout and "4 of 4 jobs" in table.stderr


def test_jobs_list_all_walks_every_page_as_json_lines(server: str) -> None:
    run_json(
        server,
        "submit",
        *(f"https://example.org/all-{n}.pdf" for n in range(5)),
        "--queue",
        "cli-all",
    )

    done = run(server, "jobs", "list", "--queue", "cli-all", "--limit", "2", "--all", "--json")

    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(job["source_uri"] for job in lines) == sorted(
        f"https://example.org/all-{n}.pdf" for n in range(5)
    )


def test_jobs_list_refuses_a_bad_filter_value_as_usage(server: str) -> None:
    done = run(server, "jobs", "list", "--status", "bogus")
    assert done.returncode == 2 and "'bogus' is not one of pending" in done.stderr

    done = run(server, "jobs", "list", "--mime-type", "not a type")
    assert done.returncode == 2 and "mime_type" in done.stderr and "Traceback" not in done.stderr


def test_jobs_show_events_cancel_and_retry_one_job(server: str) -> None:
    [job] = run_json(server, "submit", "https://example.org/one.pdf")["jobs"]

    assert run_json(server, "jobs", "show", job["id"])["status"] == "pending"
    shown = run(server, "jobs", "show", job["id"])
    assert shown.returncode == 0 and "https://example.org/one.pdf" in shown.stdout

    assert run_json(server, "jobs", "cancel", job["id"])["status"] == "cancelled"
    assert run_json(server, "jobs", "retry", job["id"])["status"] == "pending"
    again = run(server, "jobs", "retry", job["id"])
    assert again.returncode == 1  # a pending job cannot be retried: the server's 409
    assert "is pending; it cannot become pending" in again.stderr
    events = run_json(server, "jobs", "events", job["id"])["items"]
    assert [event["to_status"] for event in events] == ["pending", "cancelled", "pending"]
    table = run(server, "jobs", "events", job["id"])
    assert table.returncode == 0 and "cancelled" in table.stdout


def test_jobs_cancel_and_retry_by_filter(server: str) -> None:
    run_json(
        server,
        "submit",
        *(f"https://example.org/bulk-{n}.pdf" for n in range(4)),
        "--metadata",
        "tenant=bulk-cli",
    )

    refused = run(server, "jobs", "cancel", "--metadata", "tenant=bulk-cli")
    assert refused.returncode == 2 and "--yes" in refused.stderr  # stdin is no terminal
    done = run_json(server, "jobs", "cancel", "--metadata", "tenant=bulk-cli", "--yes")
    assert (done["matched"], done["changed"]) == (4, 4)
    done = run_json(
        server, "jobs", "retry", "--metadata", "tenant=bulk-cli", "--status", "cancelled", "--yes"
    )
    assert done["changed"] == 4

    both = run(server, "jobs", "cancel", str(uuid4()), "--status", "pending")
    assert both.returncode == 2 and "not both" in both.stderr


def test_unknown_job_is_not_found_and_a_bad_id_is_usage(server: str) -> None:
    missing = str(uuid4())
    done = run(server, "jobs", "show", missing)
    assert done.returncode == 3
    assert done.stderr.strip() == f"chute jobs show: Job not found: No job has id {missing}."

    done = run(server, "jobs", "events", "not-a-uuid")
    assert done.returncode == 2 and "not a job id" in done.stderr
    assert "Traceback" not in done.stderr


def test_queues_table_pause_resume_and_limit(server: str) -> None:
    run_json(server, "submit", "https://example.org/q.pdf", "--queue", "cli-queue")

    views = run_json(server, "queues")["items"]
    [view] = [v for v in views if v["name"] == "cli-queue"]
    assert view["counts"]["pending"] == 1
    table = run(server, "queues")
    assert table.returncode == 0 and "cli-queue" in table.stdout

    assert run_json(server, "queues", "pause", "cli-queue")["paused"] is True
    assert run_json(server, "queues", "resume", "cli-queue")["paused"] is False
    assert run_json(server, "queues", "limit", "cli-queue", "3")["concurrency_limit"] == 3
    assert run_json(server, "queues", "limit", "cli-queue", "none")["concurrency_limit"] is None

    done = run(server, "queues", "limit", "cli-queue", "0")
    assert done.returncode == 2 and "concurrency_limit" in done.stderr


def watch_a_job_made_and_cancelled(
    server: str, queue: str, *options: str
) -> tuple[dict[str, Any], int, str, str]:
    """`chute watch --queue QUEUE [options]` while a job of that queue is submitted and
    cancelled, then Ctrl-C: the job, and the watcher's exit code, stdout and stderr."""
    watcher = subprocess.Popen(
        [chute_script(), "watch", "--queue", queue, *options],
        env=client_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the stream opens (it sends only what is committed after)
        url = f"https://example.org/{queue}.pdf"
        [job] = run_json(server, "submit", url, "--queue", queue)["jobs"]
        run_json(server, "jobs", "cancel", job["id"])
        time.sleep(1.0)
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=15)
    return job, watcher.returncode, out, err


def test_watch_prints_status_changes_until_ctrl_c(server: str) -> None:
    job, code, out, err = watch_a_job_made_and_cancelled(server, "cli-watch")

    assert code == 0, err
    assert "Traceback" not in err
    lines = [line for line in out.splitlines() if job["id"] in line]
    assert len(lines) == 2
    assert "new -> pending" in lines[0] and "pending -> cancelled" in lines[1]


def test_a_missing_or_wrong_key_is_unauthorized(server: str) -> None:
    for key in ("", "wrong-key"):
        done = run(server, "queues", env=client_env(server, CHUTE_API_KEY=key))
        assert done.returncode == 4, done.stderr
        assert "Unauthorized" in done.stderr and "Traceback" not in done.stderr


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    nowhere = f"http://127.0.0.1:{pg.free_port()}"
    done = run(nowhere, "jobs", "list", "--server", nowhere)

    assert done.returncode == 5
    assert nowhere in done.stderr and "Traceback" not in done.stderr


def test_client_commands_read_no_server_settings(server: str) -> None:
    broken = client_env(server, CHUTE_PORT="eighty", CHUTE_DATABASE_URL="nonsense://")
    done = run(server, "queues", env=broken)

    assert done.returncode == 0, done.stderr


def test_a_refused_upload_is_reported_and_the_other_files_go_on(
    server: str, tmp_path: Path
) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "good.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    done = run(server, "submit", str(tmp_path / "empty.txt"), str(tmp_path / "good.pdf"),
               "--queue", "cli-refused", "--json")  # fmt: skip

    assert done.returncode == 2  # the server's 422 for the empty file
    assert f"chute submit: {tmp_path / 'empty.txt'}: Validation failed" in done.stderr
    assert [job["file_name"] for job in json.loads(done.stdout)["jobs"]] == ["good.pdf"]


def test_submit_run_after_sets_when_the_job_may_run(server: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    paris = later.astimezone(timezone(timedelta(hours=1)))
    [job] = run_json(
        server,
        "submit",
        "https://example.org/later.pdf",
        "--queue",
        "cli-later",
        "--run-after",
        paris.isoformat(),
    )["jobs"]
    assert datetime.fromisoformat(job["run_after"]) == later

    done = run(server, "submit", "https://example.org/x.pdf", "--run-after", "tomorrow")
    assert done.returncode == 2 and "--run-after" in done.stderr and "Traceback" not in done.stderr


def test_the_api_key_may_be_given_as_a_flag(server: str) -> None:
    env = client_env(server)
    del env["CHUTE_API_KEY"]
    assert run(server, "queues", env=env).returncode == 4
    done = run(server, "queues", "--api-key", KEY, "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert "items" in json.loads(done.stdout)


def test_watch_json_prints_the_streams_events_as_json_lines(server: str) -> None:
    job, code, out, err = watch_a_job_made_and_cancelled(server, "cli-watch-json", "--json")

    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    mine = [event for event in events if event["job_id"] == job["id"]]
    assert [event["to_status"] for event in mine] == ["pending", "cancelled"]
    assert mine[1]["job"]["status"] == "cancelled" and mine[1]["event_id"] > mine[0]["event_id"]


def test_bulk_by_filter_calls_again_while_more_jobs_match(server: str) -> None:
    urls = [f"https://example.org/many-{n}.pdf" for n in range(1203)]
    assert len(run_json(server, "submit", *urls, "--metadata", "tenant=many")["jobs"]) == 1203

    done = run_json(server, "jobs", "cancel", "--metadata", "tenant=many", "--yes")
    assert (done["matched"], done["changed"]) == (1203, 1203)
    with api(server) as client:
        page = client.get("/jobs", params={"metadata.tenant": "many", "status": "pending"})
        assert page.json()["items"] == []
