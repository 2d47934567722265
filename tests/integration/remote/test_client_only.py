"""What only the remote client does: upload a file from disk, wait for a job, follow the
live stream (across a server restart), keys and problems, the blocking twin."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from uuid import uuid4

import httpx
import pytest
from chute.adapters.remote import (
    RemoteEngine,
    RemoteError,
    StreamEvent,
    SyncRemoteEngine,
    Unauthorized,
    problem_of,
)
from chute.adapters.remote.errors import ERRORS
from chute.application import (
    ClaimFilter,
    JobFilter,
    JobNotFound,
    NewJob,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationFailed,
)
from chute.application.worker import JobContext, Worker
from chute.domain import Job, JobStatus, Priority, SourceType
from chute.entrypoints.http.problems import PROBLEMS

from tests.faults import ChuteServer
from tests.integration.remote.conftest import KEY, MAX_FILE

pytestmark = pytest.mark.slow  # a real `chute serve`


def new(queue: str) -> NewJob:
    return NewJob(source_type=SourceType.URL, source_uri="https://example.org/a", queue=queue)


async def finish(chute: RemoteEngine, queue: str, after: float = 0.0) -> Job:
    await asyncio.sleep(after)
    [job] = await chute.claim_jobs("w1", filter=ClaimFilter(queues=frozenset({queue})))
    await chute.heartbeat(job.id, "w1", progress=40)
    return await chute.complete_job(job.id, "w1")


# -- upload and wait ---------------------------------------------------------------------------


async def test_upload_file_streams_it_from_disk_with_progress(
    remote: RemoteEngine, tmp_path: Path, queue: str
) -> None:
    path = tmp_path / "big é.bin"
    data = b"%PDF-1.4\n" + os.urandom(5 * 1024 * 1024)
    path.write_bytes(data)
    told: list[int] = []

    job = await remote.upload_file(
        path, queue=queue, priority=Priority.HIGH, metadata={"batch": 7}, progress=told.append
    )

    assert (job.file_name, job.file_size, job.queue) == ("big é.bin", len(data), queue)
    assert (job.priority, job.metadata, job.source_type) == (Priority.HIGH, {"batch": 7}, "upload")
    assert told == sorted(told) and told[-1] == len(data) and len(told) > 2
    _, content = await remote.open_content(job.id)
    assert b"".join([chunk async for chunk in content]) == data


async def test_upload_file_over_the_limit_is_refused(
    remote: RemoteEngine, tmp_path: Path, queue: str
) -> None:
    path = tmp_path / "huge.bin"
    path.write_bytes(bytes(MAX_FILE + 1))

    with pytest.raises(PayloadTooLarge) as refused:
        await remote.upload_file(path, queue=queue)

    assert refused.value.title == "Payload too large"  # type: ignore[attr-defined]
    assert (await remote.list_jobs(filter=JobFilter(queues=frozenset({queue})))).total == 0


async def test_wait_job_answers_when_the_job_ends_or_at_the_timeout(
    remote: RemoteEngine, queue: str
) -> None:
    job = (await remote.create_job(new(queue))).job

    waited = await remote.wait_job(job.id, timeout=1)
    assert waited.status is JobStatus.PENDING

    finishing = asyncio.create_task(finish(remote, queue, after=0.3))
    done = await remote.wait_job(job.id, timeout=20)
    await finishing
    assert done.status is JobStatus.COMPLETED


async def test_iter_jobs_walks_every_page(remote: RemoteEngine, queue: str) -> None:
    made = (await remote.create_jobs([new(queue) for _ in range(5)])).jobs

    seen = [
        job.id
        async for job in remote.iter_jobs(filter=JobFilter(queues=frozenset({queue})), page_size=2)
    ]

    assert seen == [job.id for job in reversed(made)]  # newest first


# -- the stream --------------------------------------------------------------------------------


async def next_change(events: object, job_id: object) -> StreamEvent:
    async for event in events:  # type: ignore[attr-defined]
        if event.kind == "job" and event.job_id == job_id:
            return event  # type: ignore[no-any-return]
    raise AssertionError("the stream ended")


async def test_stream_sends_each_change_in_order_with_the_job_and_progress(
    remote: RemoteEngine, queue: str
) -> None:
    job = (await remote.create_job(new(queue))).job
    events = remote.stream(queues=[queue], last_event_id=0)  # from the start: its creation
    seen: list[StreamEvent] = []

    async def read() -> None:
        async for event in events:
            seen.append(event)
            if event.event is not None and event.event.to_status.is_terminal:
                return

    reading = asyncio.create_task(read())
    await finish(remote, queue)
    await asyncio.wait_for(reading, 20)
    await events.aclose()  # type: ignore[attr-defined]

    changes = [e for e in seen if e.kind == "job"]
    statuses = [e.event.to_status for e in changes if e.event]
    assert statuses == ["pending", "running", "completed"], seen
    assert all(e.job_id == job.id and e.job is not None for e in changes)
    assert changes[-1].job is not None and changes[-1].job.status is JobStatus.COMPLETED
    assert [e.progress for e in seen if e.kind == "progress"] in ([], [40])  # if seen in time
    ids = [e.event_id for e in changes]
    assert ids == sorted(ids) and None not in ids


async def test_stream_resumes_after_a_server_restart_without_losing_a_change(
    server: ChuteServer, remote: RemoteEngine, queue: str
) -> None:
    job = (await remote.create_job(new(queue))).job
    connections: list[int] = []
    events = remote.stream(
        job_ids=[job.id], last_event_id=0, opened=lambda: connections.append(len(connections))
    )
    created = await asyncio.wait_for(next_change(events, job.id), 20)
    assert created.event is not None and created.event.to_status is JobStatus.PENDING
    assert connections == [0]  # told once the first connection was open

    server.kill()  # a dropped connection (a graceful stop would wait for the stream)
    await server.start()
    await finish(remote, queue)  # while the stream is still away, or just back

    running = await asyncio.wait_for(next_change(events, job.id), 20)
    completed = await asyncio.wait_for(next_change(events, job.id), 20)
    assert [e.event.to_status for e in (running, completed) if e.event] == ["running", "completed"]
    assert connections == [0, 1]  # and again when the connection was open once more
    await events.aclose()  # type: ignore[attr-defined]


# -- errors ------------------------------------------------------------------------------------


async def test_a_wrong_key_is_unauthorized_with_the_problem(server: ChuteServer) -> None:
    for key in ("wrong-key", None):
        async with RemoteEngine(server.base_url, key) as chute:
            with pytest.raises(Unauthorized) as refused:
                await chute.list_queues()
        assert refused.value.status == 401 and refused.value.title == "Unauthorized"
        assert "key" in refused.value.detail


async def test_errors_keep_the_title_and_detail_of_their_problem(remote: RemoteEngine) -> None:
    missing = uuid4()
    with pytest.raises(JobNotFound) as refused:
        await remote.get_job(missing)
    problem = problem_of(refused.value)
    assert problem is not None and (problem.status, problem.title) == (404, "Job not found")
    assert str(missing) in problem.detail and problem.request_id

    bad = NewJob(source_type=SourceType.URL, source_uri="ftp://example.org/a")
    with pytest.raises(ValidationFailed) as invalid:
        await remote.create_job(bad)
    assert invalid.value.detail == "The request has 1 invalid value."  # type: ignore[attr-defined]


async def test_a_server_that_does_not_answer_is_service_unavailable() -> None:
    async with RemoteEngine("http://127.0.0.1:9", timeout=2) as chute:
        with pytest.raises(ServiceUnavailable) as refused:
            await chute.get_job(uuid4())
    assert "cannot be reached" in refused.value.detail  # type: ignore[attr-defined]


async def test_every_problem_type_of_the_server_maps_back() -> None:
    types = {type_ for _, type_, _ in PROBLEMS.values()} - {
        "bad-request",
        "request-header-fields-too-large",
    }

    assert types <= set(ERRORS)


async def test_an_unknown_route_is_a_remote_error(server: ChuteServer) -> None:
    transport = httpx.AsyncHTTPTransport()
    async with RemoteEngine(server.base_url + "/nowhere", KEY, transport=transport) as chute:
        with pytest.raises(RemoteError) as refused:
            await chute.list_queues()
    assert refused.value.status == 404


# -- the blocking twin, and a worker on the remote engine --------------------------------------


async def test_the_sync_engine_does_the_same_blocking(server: ChuteServer, queue: str) -> None:
    def session() -> tuple[Job, list[Job], Job]:
        with SyncRemoteEngine(server.base_url, KEY) as chute:
            made = chute.create_job(new(queue)).job
            listed = list(chute.iter_jobs(filter=JobFilter(queues=frozenset({queue}))))
            with pytest.raises(JobNotFound):
                chute.get_job(uuid4())
            return made, listed, chute.cancel_job(made.id).job

    made, listed, cancelled = await asyncio.to_thread(session)

    assert [job.id for job in listed] == [made.id]
    assert cancelled.status is JobStatus.CANCELLED


async def test_a_worker_runs_jobs_on_a_remote_engine(remote: RemoteEngine, queue: str) -> None:
    async def shout(job: Job, context: JobContext) -> dict[str, str]:
        await context.progress(50, "half way")
        return {"loud": job.source_uri.upper()}

    job = (await remote.create_job(new(queue))).job
    worker = Worker(
        remote,  # type: ignore[arg-type]
        shout,
        poll_seconds=0.1,
        filter=ClaimFilter(queues=frozenset({queue})),
    )
    running = asyncio.create_task(worker.run())
    done = await remote.wait_job(job.id, timeout=20)
    worker.stop()
    await running

    assert (done.status, done.result) == (JobStatus.COMPLETED, {"loud": "HTTPS://EXAMPLE.ORG/A"})
