"""Every edge of the job's status diagram is allowed, and every other one refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from chute.domain import (
    TRANSITIONS,
    InvalidTransition,
    Job,
    JobStatus,
    LeaseNotHeld,
    Priority,
    SourceType,
    backoff,
)

S = JobStatus
NOW = datetime(2026, 11, 29, 19, 11, 35, 123456, tzinfo=UTC)

ALLOWED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.PENDING),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLING),
    (S.CANCELLING, S.CANCELLED),
    (S.CANCELLING, S.COMPLETED),
    (S.FAILED, S.PENDING),
    (S.CANCELLED, S.PENDING),
}


def job(status: JobStatus = S.PENDING, **fields: object) -> Job:
    made = Job(
        id=uuid4(),
        source_type=SourceType.URL,
        source_uri="https://example.org/a",
        created_at=NOW,
        updated_at=NOW,
        **fields,
    )  # type: ignore[arg-type]
    made.status = status
    return made


def test_the_table_is_exactly_the_diagram() -> None:
    table = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize(("start", "target"), sorted(ALLOWED))
def test_move_to_follows_every_allowed_edge(start: JobStatus, target: JobStatus) -> None:
    j = job(start)
    later = NOW + timedelta(seconds=1)
    j.move_to(target, later)
    assert (j.status, j.updated_at) == (target, later)


REFUSED = sorted(set(itertools.product(S, S)) - ALLOWED)


@pytest.mark.parametrize(("start", "target"), REFUSED)
def test_move_to_refuses_every_other_edge_and_changes_nothing(
    start: JobStatus, target: JobStatus
) -> None:
    j = job(start)
    with pytest.raises(InvalidTransition) as refused:
        j.move_to(target, NOW + timedelta(seconds=1))
    assert (refused.value.current, refused.value.target) == (start, target)
    assert (j.status, j.updated_at) == (start, NOW)


def test_cancel_pending_job_cancels_it() -> None:
    j = job()
    assert j.cancel(NOW) is True
    assert j.status is S.CANCELLED and j.finished_at == NOW


def test_cancel_running_job_asks_its_worker_to_stop() -> None:
    j = job()
    j.claim("w1", 60, NOW)
    assert j.cancel(NOW) is True
    assert j.status is S.CANCELLING and j.worker_id == "w1"


@pytest.mark.parametrize("status", [S.CANCELLED, S.CANCELLING])
def test_cancel_is_idempotent(status: JobStatus) -> None:
    j = job(status)
    assert j.cancel(NOW) is False
    assert j.status is status


@pytest.mark.parametrize("status", [S.COMPLETED, S.FAILED])
def test_cancel_refuses_finished_job(status: JobStatus) -> None:
    with pytest.raises(InvalidTransition):
        job(status).cancel(NOW)


@pytest.mark.parametrize("status", [S.FAILED, S.CANCELLED])
def test_retry_allows_one_more_attempt_and_clears_run_after(status: JobStatus) -> None:
    j = job(status, attempts=3, max_attempts=3, run_after=NOW, last_error="boom")
    j.retry(NOW)
    assert j.status is S.PENDING
    assert (j.attempts, j.max_attempts, j.run_after) == (3, 4, None)


def test_retry_may_raise_max_attempts_above_twenty() -> None:
    j = job(S.FAILED, attempts=20, max_attempts=20)
    j.retry(NOW)
    assert j.max_attempts == 21


@pytest.mark.parametrize("status", [S.PENDING, S.RUNNING, S.CANCELLING, S.COMPLETED])
def test_retry_refuses_jobs_that_are_not_failed_or_cancelled(status: JobStatus) -> None:
    with pytest.raises(InvalidTransition):
        job(status).retry(NOW)


def test_claim_takes_a_lease_and_counts_the_attempt() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    assert j.status is S.RUNNING and j.attempts == 1 and j.worker_id == "w1"
    assert j.lease_expires_at == NOW + timedelta(seconds=30)
    j.check_holder("w1", NOW + timedelta(seconds=29))
    for worker, at in [("w2", NOW), ("w1", NOW + timedelta(seconds=30))]:
        with pytest.raises(LeaseNotHeld):
            j.check_holder(worker, at)


def test_fail_with_attempts_left_backs_off() -> None:
    j = job(max_attempts=2)
    j.claim("w1", 30, NOW)
    j.fail(NOW, "boom", retryable=True, backoff=timedelta(seconds=4))
    assert j.status is S.PENDING and j.run_after == NOW + timedelta(seconds=4)
    assert j.worker_id is None and j.last_error == "boom"


@pytest.mark.parametrize(("retryable", "max_attempts"), [(False, 3), (True, 1)])
def test_fail_without_attempts_left_or_not_retryable_is_final(
    retryable: bool, max_attempts: int
) -> None:
    j = job(max_attempts=max_attempts)
    j.claim("w1", 30, NOW)
    j.fail(NOW, "boom", retryable=retryable, backoff=timedelta(seconds=1))
    assert j.status is S.FAILED and j.finished_at == NOW


def test_fail_or_lease_end_of_cancelling_job_cancels_it() -> None:
    for end in ("fail", "expire"):
        j = job()
        j.claim("w1", 30, NOW)
        j.cancel(NOW)
        if end == "fail":
            j.fail(NOW, "stopped", retryable=True, backoff=timedelta(0))
        else:
            j.expire_lease(NOW)
        assert j.status is S.CANCELLED


def test_complete_of_cancelling_job_keeps_the_result() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    j.cancel(NOW)
    j.complete(NOW, {"pages": 3})
    assert j.status is S.COMPLETED and j.result == {"pages": 3}


@pytest.mark.parametrize(("max_attempts", "expected"), [(2, S.PENDING), (1, S.FAILED)])
def test_lease_end_requeues_or_fails(max_attempts: int, expected: JobStatus) -> None:
    j = job(max_attempts=max_attempts)
    j.claim("w1", 30, NOW)
    j.expire_lease(NOW + timedelta(seconds=31))
    assert j.status is expected and j.worker_id is None and j.lease_expires_at is None


def test_priorities_are_ordered() -> None:
    assert Priority.LOW < Priority.NORMAL < Priority.HIGH < Priority.URGENT
    assert sorted([Priority.URGENT, Priority.LOW, Priority.HIGH]) == [
        Priority.LOW,
        Priority.HIGH,
        Priority.URGENT,
    ]
    assert [Priority.from_rank(p.rank) for p in Priority] == list(Priority)


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [
        (1, 1.0, 1),
        (2, 1.0, 2),
        (3, 0.5, 2),
        (10, 1.0, 512),
        (11, 1.0, 600),
        (500, 0.75, 450),
        (0, 1.0, 1),
    ],
)
def test_backoff_is_exponential_jittered_and_capped(
    attempts: int, jitter: float, seconds: float
) -> None:
    assert backoff(attempts, base=1, cap=600, jitter=jitter) == timedelta(seconds=seconds)


def test_heartbeat_extends_by_the_claimed_lease_unless_told() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    later = NOW + timedelta(seconds=20)
    j.heartbeat("w1", later, progress=40, progress_message="half way")
    assert j.lease_expires_at == later + timedelta(seconds=30)
    assert (j.progress, j.progress_message) == (40, "half way")
    j.heartbeat("w1", later, lease_seconds=120)
    assert j.lease_expires_at == later + timedelta(seconds=120) and j.progress == 40
    with pytest.raises(LeaseNotHeld):
        j.heartbeat("w2", later)


def test_release_gives_the_attempt_back() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    j.release(NOW)
    assert (j.status, j.attempts, j.worker_id, j.run_after) == (S.PENDING, 0, None, None)


def test_every_status_change_is_kept_until_taken() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    j.cancel(NOW)
    j.expire_lease(NOW)
    assert j.take_changes() == [
        (S.PENDING, S.RUNNING),
        (S.RUNNING, S.CANCELLING),
        (S.CANCELLING, S.CANCELLED),
    ]
    assert j.take_changes() == []


def test_a_longer_heartbeat_does_not_change_the_claimed_lease_length() -> None:
    j = job()
    j.claim("w1", 30, NOW)
    j.heartbeat("w1", NOW, lease_seconds=100)
    j.heartbeat("w1", NOW + timedelta(seconds=50))
    assert j.lease_expires_at == NOW + timedelta(seconds=80)
