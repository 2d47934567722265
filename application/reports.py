"""How a worker's reports on its jobs reach the engine.

Completions that come together are sent in one `complete_jobs` call, as group commit
does: while one call runs, the completions that arrive wait for the next. A failure is
sent on its own. A report that meets the database away is kept and sent again with
backoff until its job's lease would end (its worker's heartbeats extend that lease
where they can, meanwhile): a short outage costs a job neither its outcome nor an
attempt. What cannot be sent is logged; the job then comes back when its lease ends.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from chute.application.errors import ServiceUnavailable
from chute.application.ports import WorkerEngine
from chute.application.queries import ClaimFilter
from chute.domain import ChuteError, Job, LeaseNotHeld
from chute.domain.validation import drop_unstorable

log = logging.getLogger("chute.worker")

Outcome = Job | Exception  # of one completion: the job completed, or what refused it


@dataclass(eq=False)
class _Completion:
    """A job's result waiting to be sent, and its task waiting for the answer."""

    job_id: UUID
    result: dict[str, Any] | None
    done: asyncio.Future[Outcome]
    delayed: bool = False  # sent at least once while the database was away


@dataclass(frozen=True)
class Claim:
    """The jobs a worker asks for along with completions: up to `limit`, under a lease
    of `lease_seconds`, of `filter`; `taken` gets those claimed (none when the call
    failed) and the monotonic time the claim was asked at."""

    limit: int
    lease_seconds: int
    filter: ClaimFilter
    taken: Callable[[list[Job], float], None]


@dataclass
class Backoff:
    """The waits before a report is sent again: doubling from `first` up to `longest`,
    each cut by a random part of up to a half, so that workers do not all come at once."""

    first: float
    longest: float
    failures: int = 0

    def next_wait(self) -> float:
        wait = min(self.longest, self.first * 2.0 ** min(self.failures, 30))
        self.failures += 1
        return wait * random.uniform(0.5, 1.0)


class Reporter:
    """Sends the reports of one worker; `leases` says until when each job may be reported
    on (by the monotonic clock), and its worker keeps it up to date. `claims` says what
    to claim along with a batch of completions, if anything: the completions and the
    claim then go together (`complete_and_claim`, one commit)."""

    def __init__(
        self,
        engine: WorkerEngine,
        worker_id: str,
        retry_seconds: tuple[float, float],
        monotonic: Callable[[], float] = time.monotonic,
        claims: Callable[[], Claim | None] = lambda: None,
    ) -> None:
        self.engine, self.worker_id, self.retry_seconds = engine, worker_id, retry_seconds
        self.monotonic, self.claims = monotonic, claims
        self.leases: dict[UUID, float] = {}
        self._completions: list[_Completion] = []
        self._flusher: asyncio.Task[None] | None = None

    def complete(self, job_id: UUID, result: dict[str, Any] | None) -> asyncio.Future[Outcome]:
        """Queue a job's completion; the answer is the job completed or what refused it
        (a `ServiceUnavailable` when its lease ended before the database came back)."""
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._completions.append(_Completion(job_id, result, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return done

    async def fail(self, job: Job, error: str, *, retryable: bool) -> None:
        """Report a failed attempt; what cannot be reported is logged."""
        # The engine keeps at most 8192 bytes of UTF-8 (not characters), and refuses NUL
        # and surrogates: those are dropped, and so is a character cut in two.
        clipped = drop_unstorable(error).encode("utf-8")[:8000].decode("utf-8", "ignore")
        await self._deliver(
            job.id,
            "fail",
            lambda: self.engine.fail_job(job.id, self.worker_id, clipped, retryable=retryable),
        )

    async def close(self) -> None:
        """Wait for the completions in flight (of jobs cancelled while they were sent)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)

    def not_reported(self, job_id: UUID, error: ChuteError) -> None:
        """Log a report that will not be made: the job comes back when its lease ends."""
        if isinstance(error, LeaseNotHeld):
            log.warning("worker.lease_lost", extra={"job_id": str(job_id)})
        elif isinstance(error, ServiceUnavailable):
            extra = {"job_id": str(job_id), "error": str(error), "reason": "the lease is over"}
            log.warning("worker.report_abandoned", extra=extra)
        else:
            log.warning("worker.report_refused", extra={"job_id": str(job_id), "error": str(error)})

    # -- completions ----------------------------------------------------------------------

    async def _flush(self) -> None:
        backoff = self._backoff()
        while self._completions:
            batch, self._completions = self._completions, []
            claim = self.claims()
            claimed: list[Job] = []
            asked = self.monotonic()
            try:
                outcomes, claimed = await self._send(batch, claim)
            except ServiceUnavailable as e:  # the database is away: keep them, try again
                kept, wait = self._keep(batch, e, backoff)
                self._completions[:0] = kept
                if kept:  # woken early when every task waiting for them has gone
                    await asyncio.wait({item.done for item in kept}, timeout=wait)
                continue
            except Exception as e:  # each job's task gets its own copy of the error
                outcomes = [_own(e) for _ in batch]
            except asyncio.CancelledError:
                for item in batch:
                    item.done.cancel()
                raise
            finally:
                if claim is not None:
                    claim.taken(claimed, asked)
            backoff = self._backoff()
            for item, outcome in zip(batch, outcomes, strict=True):
                if item.delayed:
                    log.info("worker.report_sent", extra={"job_id": str(item.job_id)})
                if not item.done.done():  # its task may have been cancelled meanwhile
                    item.done.set_result(outcome)

    async def _send(
        self, batch: list[_Completion], claim: Claim | None
    ) -> tuple[list[Outcome], list[Job]]:
        completions = [(item.job_id, item.result) for item in batch]
        if claim is None:
            return await self.engine.complete_jobs(self.worker_id, completions), []
        return await self.engine.complete_and_claim(
            self.worker_id,
            completions,
            limit=claim.limit,
            lease_seconds=claim.lease_seconds,
            filter=claim.filter,
        )

    def _keep(
        self, batch: list[_Completion], error: ServiceUnavailable, backoff: Backoff
    ) -> tuple[list[_Completion], float]:
        """The completions to send again, and how long to wait first; the others (their
        task gone, or their lease over) are answered now."""
        wait, kept, now = backoff.next_wait(), [], self.monotonic()
        for item in batch:
            if item.done.done():
                continue
            left = self.leases.get(item.job_id, now) - now
            if left <= 0:
                item.done.set_result(_own(error))
                continue
            if not item.delayed:
                item.delayed = True
                self._delayed(item.job_id, "complete", error)
            kept.append(item)
            wait = min(wait, left)  # each gets a last try before its lease ends
        return kept, wait

    # -- any report -----------------------------------------------------------------------

    async def _deliver(self, job_id: UUID, kind: str, report: Callable[[], Awaitable[Job]]) -> None:
        """Send a report; while the database is away, send it again with backoff until
        the job's lease would end."""
        backoff = self._backoff()
        while True:
            try:
                await report()
            except ServiceUnavailable as e:
                left = self.leases.get(job_id, 0.0) - self.monotonic()
                if left <= 0:
                    return self.not_reported(job_id, e)
                if not backoff.failures:
                    self._delayed(job_id, kind, e)
                await asyncio.sleep(min(backoff.next_wait(), left))
                continue
            except ChuteError as e:
                return self.not_reported(job_id, e)
            if backoff.failures:
                log.info("worker.report_sent", extra={"job_id": str(job_id)})
            return

    def _backoff(self) -> Backoff:
        return Backoff(*self.retry_seconds)

    @staticmethod
    def _delayed(job_id: UUID, kind: str, error: Exception) -> None:
        extra = {
            "job_id": str(job_id),
            "report": kind,
            "error": str(error),
            "retry": "kept, and sent again with backoff while the job's lease lasts",
        }
        log.warning("worker.report_delayed", extra=extra)


def _own(error: Exception) -> Exception:
    """A copy of `error` for one job's task, caused by it: one exception object raised
    or logged in many tasks would gather all their tracebacks."""
    try:
        mine = copy.copy(error)
    except Exception:  # an exception that cannot be copied is shared as it is
        return error
    mine.__cause__ = error
    return mine
