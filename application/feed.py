"""The live feed: every committed status change of the deployment, and the progress
workers report, for the streams of one process.

One reader per process (`EventFeed.run`) follows the event table in the feed's order
(commit order: see `JobEventRepository.feed`), woken by the database's change signal
(PostgreSQL notifies every process; elsewhere it looks every few tenths of a second),
and hands each event, with its job as it is then, to every subscription. Progress is
read from running jobs that changed since the last look. A subscription holds at most
`buffer` items: one that falls that far behind (a slow or vanished client) is dropped,
which costs the others nothing, and its client resumes from its last event id, read
back from the table (`follow`). The feed reads only while some stream is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from chute.application.ports import ChangeSignal, Clock, UnitOfWork, UnitOfWorkFactory
from chute.application.queries import FedEvent
from chute.domain import Job, JobStatus
from chute.domain.metadata import metadata_matches

log = logging.getLogger("chute.feed")

# A heartbeat committed by another process carries its own clock's time, and commits a
# moment after it took it: progress is looked for this far back (and told once).
PROGRESS_SLACK = timedelta(seconds=5)
PROGRESS_LIMIT = 1000  # running jobs read for progress per look


@dataclass(frozen=True, slots=True)
class Progress:
    """What a worker last reported of a running job."""

    progress: int | None
    message: str | None
    at: datetime


@dataclass(slots=True)
class FeedItem:
    """A status change (`fed`) or a progress report (`progress`) of `job`; `rendered` is
    what the feed's renderer made of it, once for every stream."""

    job: Job
    fed: FedEvent | None = None
    progress: Progress | None = None
    rendered: bytes = b""


@dataclass(frozen=True, kw_only=True)
class StreamFilter:
    """Which items a stream wants; empty sets mean any. `statuses` is the new status of a
    change (progress passes it: a job reports progress only while running)."""

    job_ids: frozenset[UUID] = frozenset()
    queues: frozenset[str] = frozenset()
    statuses: frozenset[JobStatus] = frozenset()
    metadata: tuple[tuple[str, str], ...] = ()

    def matches(self, item: FeedItem) -> bool:
        job = item.job
        if self.job_ids and job.id not in self.job_ids:
            return False
        if self.queues and job.queue not in self.queues:
            return False
        if self.statuses and item.fed is not None and item.fed.event.to_status not in self.statuses:
            return False
        return metadata_matches(job.metadata, self.metadata)


class SubscriptionDropped(Exception):
    """The subscription fell `buffer` items behind and was let go."""


class Subscription:
    """What one stream receives from the feed: what the feed reads after it subscribed."""

    def __init__(self, buffer: int) -> None:
        self._items: asyncio.Queue[FeedItem | None] = asyncio.Queue(buffer)
        self.dropped = False

    def offer(self, item: FeedItem) -> None:
        if self.dropped:
            return
        try:
            self._items.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped = True
            while not self._items.empty():  # let the items go: the reader ends
                self._items.get_nowait()
            self._items.put_nowait(None)

    def ready(self, most: int) -> list[FeedItem]:
        """Up to `most` items that came already, without waiting (a stream sends them in
        one write)."""
        items: list[FeedItem] = []
        while len(items) < most and not self._items.empty():
            item = self._items.get_nowait()
            if item is None:
                raise SubscriptionDropped()
            items.append(item)
        return items

    async def next(self, at_most: float) -> FeedItem | None:
        """The next item, or None when none came within `at_most` seconds."""
        try:
            item = await asyncio.wait_for(self._items.get(), at_most)
        except TimeoutError:
            return None
        if item is None:
            raise SubscriptionDropped()
        return item


@dataclass
class EventFeed:
    """The feed of one process (see the module's docstring); `render` makes the bytes
    every stream sends of an item."""

    uow: UnitOfWorkFactory
    signal: ChangeSignal
    clock: Clock
    render: Callable[[FeedItem], bytes] = lambda item: b""
    batch: int = 500
    buffer: int = 1000
    poll_seconds: float = 1.0
    _subscriptions: set[Subscription] = field(default_factory=set)
    _head: int | None = None  # the id of the last event handed out
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _progress_seen: dict[UUID, tuple[int | None, str | None]] = field(default_factory=dict)
    _progress_since: datetime | None = None

    async def subscribe(self) -> Subscription:
        """A subscription to what is committed from now on."""
        async with self._lock:
            if not self._subscriptions:  # start from what is committed now, not before
                async with self.uow(read_only=True) as uow:
                    head = await uow.events.feed_head()
                self._head = head.id if head else None
                self._progress_since = self.clock.now()
            subscription = Subscription(self.buffer)
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def follow(
        self, subscription: Subscription, after: int | None, idle: float, most: int
    ) -> AsyncIterator[list[FeedItem]]:
        """What a stream sends, in bursts of at most `most` items (rendered): with
        `after`, every status change after that event read back from the table, then what
        `subscription` receives, without the changes already sent or at or before
        `after`; an empty burst when nothing new came for `idle` seconds. Raises
        `SubscriptionDropped` when the subscription is let go."""
        sent = None  # the feed position of the last change sent (or resumed after)
        if after is not None:
            async with self.uow(read_only=True) as uow:
                sent = await uow.events.feed_position(after)
            async for page in self._backlog(after, most):
                sent = page[-1].fed.position if page[-1].fed else sent
                yield page
        while True:
            first = await subscription.next(idle)
            if first is None:
                yield []
                continue
            # What came meanwhile goes in the same burst: one send per burst, not per item.
            yield [
                item
                for item in [first, *subscription.ready(most - 1)]
                if not (item.fed is not None and sent is not None and item.fed.position <= sent)
            ]

    async def _backlog(self, after: int, most: int) -> AsyncIterator[list[FeedItem]]:
        """Every status change after the event `after`, in pages, up to what is
        committed now."""
        while True:
            async with self.uow(read_only=True) as uow:
                fed = await uow.events.feed(after, most)
                jobs = await self._jobs_of(uow, fed)
            page = []
            for event in fed:
                job = jobs.get(event.event.job_id)
                if job is not None:
                    item = FeedItem(job, fed=event)
                    item.rendered = self.render(item)
                    page.append(item)
            if page:
                yield page
            if len(fed) < most:
                return
            after = fed[-1].id

    async def run(self) -> None:
        """Follow the event table and hand out what comes, forever."""
        while True:
            await self.signal.wait(self.poll_seconds)
            if not self._subscriptions:
                self._progress_seen.clear()
                continue
            try:
                async with self._lock:
                    await self._read_events()
                    await self._read_progress()
            except Exception:
                log.exception("feed.read_failed")
                await asyncio.sleep(self.poll_seconds)

    async def _read_events(self) -> None:
        while True:
            async with self.uow(read_only=True) as uow:
                fed = await uow.events.feed(self._head, self.batch)
                jobs = await self._jobs_of(uow, fed)
            for event in fed:
                job = jobs.get(event.event.job_id)
                if job is not None:  # purged meanwhile: nothing to show
                    self._publish(FeedItem(job, fed=event))
                if event.event.to_status is not JobStatus.RUNNING:
                    self._progress_seen.pop(event.event.job_id, None)
            if fed:
                self._head = fed[-1].id
            if len(fed) < self.batch:
                return

    async def _read_progress(self) -> None:
        assert self._progress_since is not None  # set by subscribe
        now = self.clock.now()
        async with self.uow(read_only=True) as uow:
            running = await uow.jobs.running_since(
                self._progress_since - PROGRESS_SLACK, PROGRESS_LIMIT
            )
        self._progress_since = now
        for job in running:
            reported = (job.progress, job.progress_message)
            if reported == (None, None) or self._progress_seen.get(job.id) == reported:
                continue
            self._progress_seen[job.id] = reported
            self._publish(
                FeedItem(job, progress=Progress(job.progress, job.progress_message, job.updated_at))
            )

    def _publish(self, item: FeedItem) -> None:
        item.rendered = self.render(item)
        for subscription in list(self._subscriptions):
            subscription.offer(item)

    @staticmethod
    async def _jobs_of(uow: UnitOfWork, fed: Sequence[FedEvent]) -> dict[UUID, Job]:
        ids = list(dict.fromkeys(event.event.job_id for event in fed))
        return {job.id: job for job in await uow.jobs.get_many(ids)} if ids else {}
