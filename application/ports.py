"""The ports: the only ways the use cases reach storage, files, detection, time and ids.

Adapters subclass these protocols explicitly, so that type checkers hold them to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self
from uuid import UUID

from chute.application.queries import (
    ClaimFilter,
    FedEvent,
    JobFilter,
    JobQuery,
    MinuteCounts,
    QueueCounts,
)
from chute.application.webhooks import SendResult, Webhook
from chute.domain import (
    GENERIC_TYPES,
    DetectionResult,
    Job,
    JobEvent,
    JobStatus,
    Mode,
    QueueSettings,
    Schedule,
    WebhookDelivery,
)


class JobRepository(Protocol):
    """Jobs of one unit of work. Never commits."""

    async def add(self, jobs: Sequence[Job]) -> None:
        """Insert new jobs."""

    async def get(self, job_id: UUID, *, for_update: bool = False) -> Job | None:
        """The job with this id, locked until commit when `for_update`, or None."""

    async def get_many(self, job_ids: Sequence[UUID], *, for_update: bool = False) -> list[Job]:
        """The jobs with these ids that exist, in the order of `job_ids`; locked until
        commit when `for_update`."""

    async def update(self, job: Job) -> None:
        """Write every field of an existing job."""

    async def update_many(self, jobs: Sequence[Job]) -> None:
        """Write every field of existing jobs, at once: jobs this unit of work locked
        (PostgreSQL cannot tell how many rows one batch of updates found)."""

    async def running_since(self, since: datetime, limit: int) -> list[Job]:
        """At most `limit` running jobs changed at or after `since` (a heartbeat changes
        one), the least recently changed first: where progress is read from."""

    async def find(self, query: JobQuery) -> list[Job]:
        """At most `query.limit` jobs matching the query, in its order."""

    async def count(self, filt: JobFilter, *, at_most: int | None = None) -> int:
        """How many jobs match `filt`; counting stops at `at_most` when it is given."""

    async def lock_claimable(self, filt: ClaimFilter, now: datetime, limit: int) -> list[Job]:
        """Up to `limit` pending jobs due by `now`, highest priority then oldest first,
        locked until commit; rows another transaction holds are skipped, not waited for."""

    async def queue_names(self) -> set[str]:
        """The name of every queue some job is in."""

    async def has_queue(self, queue: str) -> bool:
        """Whether some job is in `queue`."""

    async def queue_counts(
        self, now: datetime, since: datetime, queues: Collection[str]
    ) -> dict[str, QueueCounts]:
        """The counts of each of `queues` that has jobs in a
        counted state: held and pending ones (ready by `now`, or scheduled later) and
        those completed or failed since `since`. Queues with none are absent."""

    async def finished_per_minute(self, since: datetime) -> list[MinuteCounts]:
        """The jobs completed and failed at or after `since`, counted by the UTC minute
        of their `finished_at`: one item per minute with any, oldest first."""

    async def lock_expired(self, now: datetime, limit: int) -> list[Job]:
        """Up to `limit` running or cancelling jobs whose lease ended by `now`, locked
        until commit, skipping rows another transaction holds."""

    async def lock_purgeable(
        self, statuses: frozenset[JobStatus], updated_before: datetime, limit: int
    ) -> list[Job]:
        """Up to `limit` jobs in `statuses` updated before `updated_before`, skip-locked."""

    async def delete(self, job_ids: Sequence[UUID]) -> int:
        """Remove these jobs with their events and detection results; how many were found."""

    async def referenced_folders(self, folders: Sequence[UUID]) -> set[UUID]:
        """Those of `folders` that some job's `content_key` points into."""


class JobEventRepository(Protocol):
    """The status history of jobs. Never commits."""

    async def add(self, events: Sequence[JobEvent]) -> None:
        """Append events. The engine adds an event only in the unit of work that added
        its job or holds it locked, so an adapter need not check that the job exists;
        `JobRepository.delete` removes a job's events with it."""

    async def list(self, job_id: UUID) -> list[JobEvent]:
        """Every event of a job, oldest first."""

    async def feed(self, after: int | None, limit: int) -> Sequence[FedEvent]:
        """At most `limit` committed events after the event `after` (None: from the
        first) in the feed's order, which is commit order: an event this answers never
        has one before it that a later call could still answer. (An `after` that names
        no event, as one purged since, reads on from the first event with a greater id.)"""

    async def feed_head(self) -> FedEvent | None:
        """The last event `feed` would answer now, or None when there is none."""

    async def feed_position(self, event_id: int) -> tuple[int, int] | None:
        """The place of the event `event_id` in the feed's order (`FedEvent.position`),
        or None when there is no such event (purged, or never written)."""


class DetectionResultRepository(Protocol):
    """The content-detection result of each job. Never commits."""

    async def add(self, job_id: UUID, result: DetectionResult) -> None:
        """Store the result for a job, replacing an earlier one. (Jobs are read with
        their result: `JobRepository`.)"""


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A request already answered: its key, a digest of its body, the jobs it made."""

    scope: str
    key: str
    fingerprint: str
    job_ids: tuple[UUID, ...]
    created_at: datetime


class IdempotencyKeyRepository(Protocol):
    """Idempotency keys of create requests. Never commits."""

    async def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        """The record of this key, or None."""

    async def add(self, record: IdempotencyRecord) -> None:
        """Store a new key; raise `IdempotencyConflict` when it exists already."""

    async def delete(self, scope: str, key: str) -> None:
        """Forget a key (an expired one, before it is used again)."""

    async def delete_older(self, created_before: datetime) -> int:
        """Forget every key stored before `created_before`; how many there were."""


class QueueRepository(Protocol):
    """The settings of queues (queues without settings have none here). Never commits."""

    async def list(self) -> list[QueueSettings]:
        """Every queue's settings, by name."""

    async def get(self, name: str) -> QueueSettings | None:
        """The settings of `name`, or None."""

    async def lock(self, name: str) -> QueueSettings | None:
        """The settings of `name` as last committed, locked until commit: claims of a
        limited queue and changes of its settings take this lock, one at a time."""

    async def add_if_absent(self, settings: QueueSettings) -> None:
        """Store settings for a queue that has none; nothing when it has some already
        (also when another transaction stored them meanwhile)."""

    async def update(self, settings: QueueSettings) -> None:
        """Write the settings of a queue that has some."""

    async def for_claims(self) -> Sequence[tuple[QueueSettings, int]]:
        """Every queue's settings with how many jobs it holds now (`running` or
        `cancelling`; 0 for unlimited queues, which are not counted): what a claim
        reads first, in one read."""

    async def take_room(self, queue: QueueSettings, held: int, job_ids: Sequence[UUID]) -> int:
        """Take room in the limited queue `queue` for as many of `job_ids` (jobs this
        transaction is claiming, in claim order) as it has now, and count those against
        its limit while they are held: how many of the first ids got room, none when the
        queue is paused, unlimited or full. The room is locked until commit (claims that
        take the same room wait for each other, others do not). `queue` and `held` are
        what `for_claims` read in this transaction, with the jobs it has claimed since:
        an adapter whose write transactions run one at a time (nothing can have changed)
        counts on them; one whose claims run side by side reads the settings and counts
        as last committed, under its lock."""

    async def spread(self, name: str, limit: int | None) -> None:
        """After `name`'s limit changed to `limit`: divide it into rooms again, and the
        jobs the queue holds among them (those beyond it wait to end before any claim)."""


class ScheduleRepository(Protocol):
    """Schedules, by name. Never commits."""

    async def list(self) -> list[Schedule]:
        """Every schedule, by name."""

    async def get(self, name: str, *, for_update: bool = False) -> Schedule | None:
        """The schedule `name`, or None; with `for_update`, as last committed and locked
        until commit: two processes at one tick take it one at a time, so that the second
        sees the tick taken."""

    async def add(self, schedule: Schedule) -> bool:
        """Store a schedule whose name is new: True; False (and nothing stored) when a
        schedule of that name exists, also one another transaction stored meanwhile."""

    async def update(self, schedule: Schedule) -> None:
        """Write a schedule that exists."""

    async def save_runs(self, schedules: Sequence[Schedule]) -> None:
        """Write the next and last runs of schedules that exist (taken ticks), at once."""

    async def delete(self, name: str) -> bool:
        """Remove the schedule `name`: whether there was one."""

    async def take_due(self, now: datetime, limit: int) -> Sequence[Schedule]:
        """At most `limit` unpaused schedules whose next run is at or before `now`, by
        next run, locked until commit; schedules another transaction holds are skipped
        (it is taking their tick), so that processes share the due ones."""

    async def next_run(self) -> datetime | None:
        """The earliest next run of any unpaused schedule, or None."""


class WebhookRepository(Protocol):
    """Webhooks, by id. Never commits."""

    async def add(self, webhook: Webhook) -> None:
        """Store a new webhook."""

    async def get(self, webhook_id: UUID) -> Webhook | None:
        """The webhook with this id, or None."""

    async def list(self) -> list[Webhook]:
        """Every webhook, oldest first; in a deferred unit of work, as last committed
        (it must not begin the unit's write transaction)."""

    async def delete(self, webhook_id: UUID) -> bool:
        """Remove a webhook and its deliveries: whether there was one."""

    async def set_paused(self, webhook_id: UUID, paused: bool) -> bool:
        """Pause a webhook (its deliveries are not claimed) or resume it: whether
        there was one."""


class WebhookDeliveryRepository(Protocol):
    """Deliveries of webhooks: the outbox of job events. Never commits."""

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> None:
        """Insert new deliveries (in the transaction of the change they report)."""

    async def latest(self, webhook_id: UUID, limit: int) -> list[WebhookDelivery]:
        """The latest `limit` deliveries of a webhook, newest first."""

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[WebhookDelivery]:
        """Up to `limit` deliveries due by `now` (oldest due first) that no sender holds,
        now held until `lease_until`; rows another transaction locks are skipped, and so
        are the deliveries of a paused webhook (they wait for it to be resumed)."""

    async def update_many(self, deliveries: Sequence[WebhookDelivery]) -> None:
        """Write the attempts, results, next attempt and lease of existing deliveries."""

    async def purge_settled(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` settled deliveries (delivered, or given up) that settled
        before `before`, skipping rows another transaction locks; how many went.
        A delivery still to send is never deleted, however old."""


class UnitOfWork(Protocol):
    """One transaction: rolled back on exit unless `commit()` was called."""

    jobs: JobRepository
    detections: DetectionResultRepository
    idempotency: IdempotencyKeyRepository
    events: JobEventRepository
    queues: QueueRepository
    schedules: ScheduleRepository
    webhooks: WebhookRepository
    deliveries: WebhookDeliveryRepository

    async def __aenter__(self) -> Self:
        """Begin the transaction."""

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Roll back what was not committed and release the connection."""

    async def commit(self) -> None:
        """Make every change of this unit of work durable at once."""

    async def deployment_id(self) -> UUID:
        """The id this database was given when it was made, for life; `ServiceUnavailable`
        when it has none (its migrations were not applied)."""


class UnitOfWorkFactory(Protocol):
    """Makes a new unit of work; `read_only` ones may skip write locks."""

    def __call__(self, *, read_only: bool = False, deferred: bool = False) -> UnitOfWork:
        """A new, not yet begun unit of work.

        `deferred`: the caller needs its writes only to be whole at `commit()`, so the
        adapter may hold its inserts back until then and commit them together with
        other units' (group commit). Such a unit may raise a conflicting insert's error
        (`ValueError`, `IdempotencyConflict`) from `commit()` rather than from `add`, and
        its reads before its first other write may see the latest committed state
        rather than belong to its write transaction.
        """


@dataclass(frozen=True, slots=True)
class ContentSample:
    """What detectors look at: the first and last bytes of the content, and its size."""

    head: bytes
    tail: bytes
    size: int


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file written whole to the store."""

    key: str
    size: int
    sha256: str
    sample: ContentSample


class FileWriter(Protocol):
    """A file being streamed into the store; invisible until `finish()`."""

    key: str

    async def write(self, data: bytes) -> None:
        """Append bytes."""

    async def finish(self) -> StoredFile:
        """Flush to disk and put the file in place under its key."""

    async def abort(self) -> None:
        """Remove whatever was written, folder included."""


class FileStore(Protocol):
    """Content stored by chute, one folder per file."""

    async def create(self, folder: UUID, safe_name: str) -> FileWriter:
        """Start a new file `{folder}/{safe_name}`; its key is that path."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The bytes of a stored file, in chunks; `ContentNotFound` when absent."""

    async def describe(self, key: str) -> StoredFile:
        """Size, sha256 and detection sample of a stored file; `ContentNotFound` when absent."""

    async def delete(self, key: str) -> None:
        """Remove a stored file and its folder; nothing when absent."""

    async def delete_folder(self, folder: UUID) -> None:
        """Remove a folder and whatever is in it; nothing when absent."""

    def folders(self, older_than: datetime) -> AsyncIterator[UUID]:
        """The folders of the store (in no order) in which nothing changed since `older_than`."""

    async def check_writable(self) -> None:
        """Raise `ServiceUnavailable` unless a file can be written now."""

    async def claim_ownership(self, deployment_id: UUID) -> UUID:
        """Mark the store as belonging to `deployment_id` unless it names an owner already,
        and return the owner it names now: `deployment_id`, or the one that was there.

        The mark is written once, create-if-absent: of two first claims at once, one
        wins and both return its id. It is never a folder (`folders` never lists it).
        """


@dataclass(frozen=True, slots=True)
class Source:
    """A `url` or `s3` source being read: what is known before its bytes, and the bytes.

    `file_name`, `media_type` and `size` are what the source declares (the last segment of
    its path or key, its `Content-Type`, its length), or None; the media type is a hint
    and never trusted: detection says what the content is.
    """

    uri: str  # where it is read from: a URL after its redirects, or the s3:// URI
    chunks: AsyncIterator[bytes]
    file_name: str | None = None
    media_type: str | None = None
    size: int | None = None


class SourceReader(Protocol):
    """Opens a `url` or `s3` source as a byte stream."""

    def open(self, job: Job) -> AbstractAsyncContextManager[Source]:
        """The job's source, open for the duration of the block and closed after it.

        Every failure, on opening or while the chunks are read, is a `JobFailed`
        (`chute.application.worker`): retryable when trying again later may help (the
        network, a server error), not when it cannot (missing, refused, too large).
        """


@dataclass(frozen=True, slots=True)
class TypeGuess:
    """A detector's answer, before chute adds the content's digest and size."""

    mime_type: str
    label: str
    group: str
    confidence: float
    detector: str

    @property
    def is_generic(self) -> bool:
        return self.mime_type in GENERIC_TYPES


class ContentDetector(Protocol):
    """Tells what a piece of content is."""

    async def detect(self, sample: ContentSample) -> TypeGuess:
        """Detect the type of the sampled content."""


class ChangeSignal(Protocol):
    """Wakes readers of the event feed when events may have been committed, by this
    process or another."""

    async def wait(self, at_most: float) -> None:
        """Return when events may have been committed since the last call, or after
        `at_most` seconds (a reader then reads anyway)."""

    async def close(self) -> None:
        """Let go of what waiting holds (a connection)."""


class Calendar(Protocol):
    """When a five-field cron expression falls, in an IANA time zone, across its
    daylight-saving changes. Times in and out are aware; whole minutes."""

    def check(self, cron: str) -> None:
        """Raise `InvalidValue` for the field `cron` unless it is an expression this
        calendar reads."""

    def next_after(self, cron: str, timezone: str, after: datetime) -> datetime | None:
        """The first time the expression names strictly after `after`; None when it names
        none in the next 50 years."""

    def latest(self, cron: str, timezone: str, at: datetime) -> datetime | None:
        """The last time the expression names at or before `at`; None when none in the
        last 50 years."""


class WebhookSender(Protocol):
    """Posts signed deliveries to webhook URLs, on the SSRF rules of the fetcher."""

    def refusal(self, url: str) -> str | None:
        """Why `url` is no webhook URL (not http(s), no host, a literal address that is
        not public unless allowed), or None. Names are not resolved here."""

    async def send(
        self, url: str, secret: str, message_id: str, body: bytes, *, timeout_seconds: float
    ) -> SendResult:
        """POST `body` to `url`, signed; never raises for what the network or the
        receiver does (that is the result), nor follows a redirect."""


class Clock(Protocol):
    """Where the use cases get the time."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""


class IdGenerator(Protocol):
    """Where the use cases get new ids."""

    def new_id(self) -> UUID:
        """A new unique id (UUIDv7 in production, so that ids sort by time)."""


class Telemetry(Protocol):
    """What the engine tells about its work, for metrics and traces.

    The job methods are called after a commit, never inside a transaction, so that a
    count never tells of work that rolled back; like every method here they must be
    quick and never raise (a metric is not worth a failed use case). `NoTelemetry`
    (chute.application.telemetry) is the default: library users need not pass one.
    """

    def jobs_created(self, queue: str, source_type: str, count: int) -> None:
        """`count` jobs of `queue` and `source_type` were created."""

    def job_claimed(self, queue: str, waited_seconds: float | None) -> None:
        """A job of `queue` was claimed; `waited_seconds` from its creation to this claim
        when it is its first one, else None."""

    def attempt_ended(self, queue: str, ran_seconds: float) -> None:
        """A worker's hold on a job of `queue` ended (completed, failed, retried, released,
        cancelled, lease expired), `ran_seconds` after its claim."""

    def job_finished(self, queue: str, status: str) -> None:
        """A job of `queue` reached the final `status` (completed, failed, cancelled)."""

    def webhook_delivered(self, result: str) -> None:
        """A webhook delivery attempt ended with `result`, one of a few fixed words (a
        label of a metric: never a URL or a message): `delivered` (a 2xx answer in
        time), `failed` (another answer, none, or a refused address: retried later),
        `given_up` (failed for the last time, a day after the change)."""

    def span(self, name: str) -> AbstractContextManager[None]:
        """A span around a use case: a child of the current span, when there is one."""

    def trace_context(self) -> str | None:
        """The W3C `traceparent` of the current span, to store with a new job; None when
        nothing is traced."""

    def job_span(self, job: Job) -> AbstractContextManager[None]:
        """The span of a worker's run of `job`, continuing the trace of `job.trace_context`."""


class WorkerEngine(Protocol):
    """What a `Worker`, its jobs' `JobContext` and its reports need of the engine: the
    in-process `OrchestrationEngine`, or a client of a chute server over HTTP.

    Each method means what the engine's use case of the same name means, and raises the
    same errors (`LeaseNotHeld`, `ValidationFailed`, `ServiceUnavailable` while the
    engine's database, or the server, is away).
    """

    @property
    def telemetry(self) -> Telemetry:
        """Where the worker's job spans come from."""

    async def claim_jobs(
        self, worker_id: str, *, limit: int, lease_seconds: int, filter: ClaimFilter
    ) -> list[Job]:
        """Up to `limit` due jobs, now held by `worker_id` for `lease_seconds`."""

    async def heartbeat(
        self,
        job_id: UUID,
        worker_id: str,
        *,
        progress: int | None = None,
        progress_message: str | None = None,
    ) -> Job:
        """Extend the lease on a held job, with its progress when given."""

    async def complete_jobs(
        self, worker_id: str, completions: Sequence[tuple[UUID, dict[str, Any] | None]]
    ) -> list[Job | Exception]:
        """Complete held jobs (id, result): each one's outcome, in order."""

    async def complete_and_claim(
        self,
        worker_id: str,
        completions: Sequence[tuple[UUID, dict[str, Any] | None]],
        *,
        limit: int,
        lease_seconds: int,
        filter: ClaimFilter,
    ) -> tuple[list[Job | Exception], list[Job]]:
        """`complete_jobs`, then `claim_jobs`: the outcomes, and the jobs claimed."""

    async def fail_job(
        self, job_id: UUID, worker_id: str, error: str, *, retryable: bool = True
    ) -> Job:
        """Record a failed attempt on a held job."""

    async def release_job(self, job_id: UUID, worker_id: str) -> Job:
        """Give a held job back unfinished, so that another worker takes it at once."""

    async def rescue_expired_leases(self) -> list[Job]:
        """Take back jobs whose lease ended (a server's client may leave it to the server)."""

    async def store_content(
        self, job_id: UUID, worker_id: str, filename: str | None, content: AsyncIterable[bytes]
    ) -> Job:
        """Store and detect content a worker fetched for its held job."""

    async def redetect_content(self, job_id: UUID, worker_id: str, mode: Mode) -> Job:
        """Detect a held job's stored content again with the detector of `mode`."""

    async def open_content(self, job_id: UUID) -> tuple[Job, AsyncIterator[bytes]]:
        """A job and its stored content, streamed."""
