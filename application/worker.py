"""A worker: claims jobs from the engine and runs a processor on each, under a lease.

It needs nothing but an engine (`WorkerEngine`): the `OrchestrationEngine` of its own
process, or a client of a chute server over HTTP (`chute worker --server`):

    async def process(job: Job, context: JobContext) -> dict | None:
        await context.progress(50, "half way")
        return {"pages": 3}

    worker = Worker(engine, process, slots=4)
    await worker.run()          # until worker.stop() is called

A processor's return value is the job's result. An exception fails the attempt
(retried after a backoff while attempts are left); `JobFailed(..., retryable=False)`
fails the job for good. While a job runs, the worker heartbeats its lease; when the
job turns `cancelling`, the processor's task is cancelled and the job ends cancelled.
On `stop()`, the worker claims no more, gives running jobs `grace_seconds` to end,
then cancels them and releases their jobs so that another worker takes them at once.

A report that meets the database away is kept and sent again with backoff until the
job's lease would end, while the heartbeats go on extending the lease where they can
(`chute.application.reports`). A job's task never ends with an exception of its own:
what it cannot report is logged, and the job comes back when its lease ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from chute.application.errors import ServiceUnavailable, ValidationFailed
from chute.application.ports import WorkerEngine
from chute.application.queries import ClaimFilter
from chute.application.reports import Claim, Reporter
from chute.domain import ChuteError, Job, JobStatus, LeaseNotHeld, Mode

log = logging.getLogger("chute.worker")


class JobFailed(ChuteError):
    """Raised by a processor to fail its job with a message, retryable or not."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        self.retryable = retryable
        super().__init__(message)


@dataclass(frozen=True)
class JobContext:
    """What a processor may do with the job it runs, as the holder of its lease."""

    engine: WorkerEngine
    job: Job
    worker_id: str

    async def progress(self, percent: int | None = None, message: str | None = None) -> Job:
        """Report progress (this also extends the lease)."""
        return await self.engine.heartbeat(
            self.job.id, self.worker_id, progress=percent, progress_message=message
        )

    async def store_content(self, filename: str | None, content: AsyncIterable[bytes]) -> Job:
        """Store content for the job, detect it, and set its file name, size and type."""
        return await self.engine.store_content(self.job.id, self.worker_id, filename, content)

    async def redetect(self, mode: Mode) -> Job:
        """Detect the job's stored content again with the detector of `mode`."""
        return await self.engine.redetect_content(self.job.id, self.worker_id, mode)

    async def open_content(self) -> AsyncIterator[bytes]:
        """The job's stored content, streamed."""
        _, content = await self.engine.open_content(self.job.id)
        return content


Processor = Callable[[Job, JobContext], Coroutine[Any, Any, dict[str, Any] | None]]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Worker:
    """Runs `processor` on claimed jobs in up to `slots` concurrent tasks."""

    engine: WorkerEngine
    processor: Processor
    slots: int = 1
    worker_id: str = field(default_factory=default_worker_id)
    lease_seconds: int = 60
    poll_seconds: float = 1.0
    rescue_seconds: float = 15.0
    grace_seconds: float = 10.0
    heartbeat_seconds: float | None = None  # default: a third of the lease
    filter: ClaimFilter = field(default_factory=ClaimFilter)
    queues: Iterable[str] = ()  # claim only jobs of these queues; every queue when empty
    # The first and the longest wait before a report is sent again (the database away).
    report_retry_seconds: tuple[float, float] = (0.2, 5.0)
    monotonic: Callable[[], float] = field(default=time.monotonic, repr=False)  # leases' clock
    _running: dict[UUID, asyncio.Task[None]] = field(default_factory=dict, init=False)
    _asking: int = field(default=0, init=False)  # slots of the claims on their way
    # Jobs whose processor has ended while their report is on its way: their slots are free.
    _reporting: set[UUID] = field(default_factory=set, init=False)
    _reports: Reporter = field(init=False)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        if self.queues:
            self.filter = replace(self.filter, queues=self.filter.queues | frozenset(self.queues))
        self._reports = Reporter(
            self.engine, self.worker_id, self.report_retry_seconds, self.monotonic, self._claim_with
        )

    def stop(self) -> None:
        """Claim no more jobs; `run()` returns once the running ones are done or released."""
        self._stopping.set()

    async def run(self) -> None:
        """Claim and process jobs until `stop()`."""
        rescuer = asyncio.create_task(self._rescue_loop())
        stopped = asyncio.create_task(self._stopping.wait())
        log.info("worker.started", extra={"worker_id": self.worker_id, "slots": self.slots})
        try:
            while not self._stopping.is_set():
                free = self._free()
                asked = self.monotonic()
                claimed = await self._claim(free) if free else []
                self._start(claimed, asked)
                if not claimed:  # full, or nothing due: wait for a slot, a stop, or a poll
                    await asyncio.wait(
                        {stopped, *self._running.values()},
                        timeout=None if not free else self.poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
        finally:
            await _cancelled(stopped, rescuer)
            await self._drain()
            await self._reports.close()
            await self._drain()  # what a last completion claimed meanwhile
            log.info("worker.stopped", extra={"worker_id": self.worker_id})

    def _free(self) -> int:
        """The slots a claim may fill: a slot holds a processor, from its job's claim
        until it returns (its report may still be on its way), or a claim on its way."""
        return max(0, self.slots - len(self._running) + len(self._reporting) - self._asking)

    async def _claim(self, limit: int) -> list[Job]:
        self._asking += limit
        try:
            return await self.engine.claim_jobs(
                self.worker_id, limit=limit, lease_seconds=self.lease_seconds, filter=self.filter
            )
        except ChuteError as e:  # the database is away: wait, then try again
            log.warning("worker.claim_failed", extra={"error": str(e)})
            return []
        finally:
            self._asking -= limit

    def _claim_with(self) -> Claim | None:
        """What to claim along with completions: the jobs for the slots they freed then
        come with the same commit (none once stopping)."""
        free = 0 if self._stopping.is_set() else self._free()
        if not free:
            return None
        self._asking += free

        def taken(jobs: list[Job], asked: float) -> None:
            self._asking -= free
            self._start(jobs, asked)

        return Claim(free, self.lease_seconds, self.filter, taken)

    def _ended(self, job_id: UUID) -> None:
        """A processor has ended: its slot is free while its job's report is on its way."""
        if job_id in self._running:  # else its task is gone already (cancelled)
            self._reporting.add(job_id)

    def _start(self, jobs: list[Job], asked: float) -> None:
        for job in jobs:
            self._reports.leases[job.id] = asked + self.lease_seconds
            self._running[job.id] = asyncio.create_task(self._run_job(job))

    async def _run_job(self, job: Job) -> None:
        # The job's span continues the trace of the request that created it; the
        # processor's task and the reports start inside it, and so belong to it.
        with self.engine.telemetry.job_span(job):
            context = JobContext(self.engine, job, self.worker_id)
            work = asyncio.create_task(self.processor(job, context))
            work.add_done_callback(lambda _: self._ended(job.id))
            beats = asyncio.create_task(self._heartbeat(job, work))
            try:
                await self._settle(job, work)
            except Exception:
                # Logged here rather than left in the task for the event loop to report
                # as "never retrieved": the job comes back when its lease ends.
                log.exception("worker.job_error", extra={"job_id": str(job.id)})
            finally:
                await _cancelled(beats)
                self._running.pop(job.id, None)
                self._reporting.discard(job.id)
                self._reports.leases.pop(job.id, None)

    async def _settle(self, job: Job, work: asyncio.Task[dict[str, Any] | None]) -> None:
        try:
            result = await work
        except asyncio.CancelledError:
            if work.cancelled() and not _current_task_cancelling():
                return await self._reports.fail(job, "cancelled while running", retryable=False)
            raise
        except JobFailed as e:
            return await self._reports.fail(job, str(e), retryable=e.retryable)
        except Exception as e:
            log.warning("worker.processor_error", exc_info=True, extra={"job_id": str(job.id)})
            return await self._reports.fail(job, f"{type(e).__name__}: {e}", retryable=True)
        outcome = await self._reports.complete(job.id, result)
        if isinstance(outcome, ValidationFailed):  # else the job would stay running
            message = f"the processor's result was refused: {outcome}"
            await self._reports.fail(job, message, retryable=False)
        elif isinstance(outcome, ChuteError):
            self._reports.not_reported(job.id, outcome)
        elif isinstance(outcome, Exception):  # not the input's fault as far as is known
            message = f"the processor's result could not be recorded: {outcome!r}"
            await self._reports.fail(job, message, retryable=True)

    async def _heartbeat(self, job: Job, work: asyncio.Task[Any]) -> None:
        interval = self.heartbeat_seconds or self.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            asked = self.monotonic()
            try:
                beat = await self.engine.heartbeat(job.id, self.worker_id)
            except LeaseNotHeld:
                work.cancel()  # the job is no longer ours: stop, report nothing
                return
            except ServiceUnavailable:
                continue  # the database is away; the lease may still hold next time
            except Exception:  # logged, never left in the task
                log.warning("worker.heartbeat_failed", exc_info=True, extra={"job_id": str(job.id)})
                continue
            if job.id in self._reports.leases:  # extended by the claim's length
                self._reports.leases[job.id] = asked + self.lease_seconds
            if beat.status is JobStatus.CANCELLING:
                work.cancel()
                return

    async def _rescue_loop(self) -> None:
        while True:
            try:
                await self.engine.rescue_expired_leases()
            except ChuteError as e:
                log.warning("worker.rescue_failed", extra={"error": str(e)})
            await asyncio.sleep(self.rescue_seconds)

    async def _drain(self) -> None:
        """Give running jobs the grace period, then cancel and release what is left."""
        running = dict(self._running)
        if not running:
            return
        _, late = await asyncio.wait(running.values(), timeout=self.grace_seconds)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for job_id, task in running.items():
            if task in late:
                try:
                    await self.engine.release_job(job_id, self.worker_id)
                except ChuteError as e:
                    log.warning(
                        "worker.release_failed", extra={"job_id": str(job_id), "error": str(e)}
                    )


async def _cancelled(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until they have ended: a task cancelled mid-call still
    gives its connection back, and must not outlive the engine it runs on. `wait`, not
    `await`: their cancellation is not ours to raise, and ours still comes through."""
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
