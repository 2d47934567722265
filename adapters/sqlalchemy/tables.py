"""The schema of chute, in SQLAlchemy Core. Alembic owns it: see `migrations/`.

Every listing index of `jobs` ends with the keyset columns `(created_at, id)`, so that
each list filter and sort walks an index in order and a keyset page starts by a seek.
More serve the workers: claiming (from any queue, and from one queue) and the rescue
of expired leases; and two
retention: the purge of old finished jobs, and the storage folder of a content key.

`deployment` holds one row: the id of this database, made by its migration, which the
storage's ownership marker names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chute.domain import JobStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    and_,
    false,
    func,
    literal_column,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite keeps datetimes as text and compares them as text, so every value must be
# written in one fixed-width format (always six digits of microseconds) to sort right.
SQLITE_DATETIME_FORMAT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, with microseconds.

    PostgreSQL stores `timestamptz`; SQLite stores naive UTC text in a fixed format.
    Naive datetimes are refused: their meaning would depend on the machine.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            stored = sqlite.DATETIME(storage_format=SQLITE_DATETIME_FORMAT)  # type: ignore[no-untyped-call]
            return dialect.type_descriptor(stored)
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: chute stores aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any]:
        # One plain function per value instead of the impl's parser followed by
        # `process_result_value`: a list page reads hundreds of times.
        return _from_sqlite_text if dialect.name == "sqlite" else _as_utc


def _from_sqlite_text(value: str | None) -> datetime | None:
    # The text SQLITE_DATETIME_FORMAT wrote, read as the UTC it is: fromisoformat with
    # an offset is several times faster than a regex parse and then replace(tzinfo=).
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is UTC:  # asyncpg gives timestamptz in UTC already
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def json_type() -> TypeEngine[Any]:
    """JSON, as JSONB on PostgreSQL; Python None is SQL NULL, not JSON 'null'."""
    return JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("source_type", String(16), nullable=False),
    Column("source_uri", Text(), nullable=False),
    Column("file_name", Text()),
    Column("file_size", BigInteger()),
    Column("mime_type", String(255)),
    Column("priority", SmallInteger(), nullable=False),  # Priority.rank, so that it sorts
    Column("mode", String(16), nullable=False),
    Column("metadata", json_type(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("last_error", Text()),
    Column("worker_id", String(255)),
    Column("lease_seconds", Integer()),
    Column("lease_expires_at", UtcDateTime()),
    Column("run_after", UtcDateTime()),
    Column("started_at", UtcDateTime()),
    Column("finished_at", UtcDateTime()),
    Column("progress", SmallInteger()),
    Column("progress_message", Text()),
    Column("result", json_type()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("content_key", Text()),  # the file store's key of the job's content, if any
    Column("queue", String(64), nullable=False, server_default="default"),
    Column("schedule", String(64)),  # the schedule that made the job, if one did
    # The part of its queue's concurrency limit a held job counts against (see
    # `queue_parts`); NULL when its queue was unlimited at its claim.
    Column("limit_part", SmallInteger()),
    Column("trace_context", String(128)),  # the W3C traceparent of the creating request
)

Index(None, jobs.c.created_at, jobs.c.id)
Index(None, jobs.c.status, jobs.c.created_at, jobs.c.id)
Index(None, jobs.c.source_type, jobs.c.created_at, jobs.c.id)
Index(None, jobs.c.mime_type, jobs.c.created_at, jobs.c.id)
Index(None, jobs.c.priority, jobs.c.created_at, jobs.c.id)
Index(None, jobs.c.status, jobs.c.priority, jobs.c.created_at, jobs.c.id)
# Claiming walks `status = 'pending'` by priority DESC, created_at, id: an index can
# serve mixed directions only when it is built in them (the one above serves lists).
Index(
    "ix_jobs_status_priority_desc_created_at_id",
    jobs.c.status,
    jobs.c.priority.desc(),
    jobs.c.created_at,
    jobs.c.id,
)
# Claiming from one queue (a limited one, or a worker's few), counting a queue's held
# or pending jobs: all walk this index by its prefix.
Index(
    "ix_jobs_queue_status_priority_desc_created_at_id",
    jobs.c.queue,
    jobs.c.status,
    jobs.c.priority.desc(),
    jobs.c.created_at,
    jobs.c.id,
)
Index(None, jobs.c.queue, jobs.c.created_at, jobs.c.id)  # lists of a queue
# The scheduled jobs of each queue (pending, with a run_after): a queue's view counts
# them here and everything else from the queue index, without reading a row.
_SCHEDULED = and_(jobs.c.status == "pending", jobs.c.run_after.is_not(None))
Index(
    "ix_jobs_scheduled",
    jobs.c.queue,
    jobs.c.run_after,
    postgresql_where=_SCHEDULED,
    sqlite_where=_SCHEDULED,
)
# The held jobs (claimed, not ended yet): a few at any time, however many jobs there
# are. Claims of a limited queue count a queue's held jobs here, and the rescue finds
# the expired leases; a row is in it only while held. The statuses are SQL literals,
# here and in the statements that use it (`HELD_ROWS`), so that either database can
# match them to the index's condition, also in a prepared (generic) plan.
HELD = tuple(sorted(status.value for status in JobStatus if status.is_held))
HELD_ROWS = jobs.c.status.in_([literal_column(f"'{status}'") for status in HELD])
Index(
    "ix_jobs_held",
    jobs.c.queue,
    jobs.c.lease_expires_at,
    postgresql_where=HELD_ROWS,
    sqlite_where=HELD_ROWS,
)
Index(None, jobs.c.status, jobs.c.updated_at)  # the purge of old finished jobs
# Metadata filters (`metadata @> '{"tenant": "acme"}'`) on PostgreSQL; jsonb_path_ops
# answers containment only, in a smaller index than the default jsonb_ops. SQLite has
# no index that could serve them.
Index(
    "ix_jobs_metadata",
    jobs.c.metadata,
    postgresql_using="gin",
    postgresql_ops={"metadata": "jsonb_path_ops"},
).ddl_if(dialect="postgresql")


def content_folder() -> ColumnElement[str]:
    """The storage folder of a job's content: its key is `{uuid}/{name}`, 36 + 1 + n long.

    The constants are SQL literals, not parameters, so that both databases match this
    expression to the index built on it.
    """
    return func.substr(jobs.c.content_key, literal_column("1"), literal_column("36"))


Index("ix_jobs_content_folder", content_folder())

detection_results = Table(
    "detection_results",
    metadata,
    Column("job_id", Uuid(), ForeignKey(jobs.c.id, ondelete="CASCADE"), primary_key=True),
    Column("mime_type", String(255), nullable=False),
    Column("label", Text(), nullable=False),
    Column("group_name", Text(), nullable=False),  # "group" is an SQL keyword
    Column("confidence", Float(), nullable=False),
    Column("detector", Text(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(32), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("job_ids", json_type(), nullable=False),  # a list of uuid strings
    Column("created_at", UtcDateTime(), nullable=False),
)

Index(None, idempotency_keys.c.created_at)  # the purge of expired keys

job_events = Table(
    "job_events",
    metadata,
    # An INTEGER PRIMARY KEY is SQLite's rowid (and autoincrements); BIGSERIAL elsewhere.
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    # No foreign key: its check cost PostgreSQL a look-up and a row lock for every event
    # (half of a created job's insert). An event is written only in the transaction that
    # inserted its job or holds it locked, and the purge deletes events first (0018).
    Column("job_id", Uuid(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("from_status", String(16)),  # NULL for the creation of the job
    Column("to_status", String(16), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("detail", Text()),
    # PostgreSQL: the id of the transaction that wrote the event (its server default,
    # pg_current_xact_id()). Ids are taken before commit, in another order than commits
    # happen; the live feed reads events in (tx, id) order, only of transactions older
    # than every one still running, so that none can appear behind a reader. SQLite
    # commits one writer at a time, in id order: NULL there.
    Column("tx", BigInteger()),
)

Index(None, job_events.c.job_id, job_events.c.id)
Index("ix_job_events_tx_id", job_events.c.tx, job_events.c.id).ddl_if(dialect="postgresql")

# The settings of queues; a queue that has none is unpaused and unlimited. Claims of a
# limited queue lock its row (PostgreSQL), so that they count its held jobs one by one.
queues = Table(
    "queues",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("paused", Boolean(), nullable=False),
    Column("concurrency_limit", Integer()),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# A limited queue's limit, divided into parts (at most 8) whose capacities add up to it.
# A claim locks one part with room (SKIP LOCKED) and counts only the held jobs of that
# part: claims of one queue run side by side instead of one after another, and the sum
# of the parts keeps the limit. Held jobs of no part (beyond a lowered limit, -1) keep
# every claim of their queue waiting until they end.
queue_parts = Table(
    "queue_parts",
    metadata,
    Column("queue", String(64), primary_key=True),
    Column("part", SmallInteger(), primary_key=True),
    Column("capacity", Integer(), nullable=False),
)

# Schedules: the job each tick of `cron` creates, and when the next tick is. A tick is
# taken by locking the row (PostgreSQL; SQLite's write transaction holds the file) and
# moving `next_run_at` on, in the transaction that creates its job.
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("cron", String(255), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("job", json_type(), nullable=False),
    Column("paused", Boolean(), nullable=False),
    Column("next_run_at", UtcDateTime()),  # NULL while paused
    Column("last_run_at", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Webhooks: where job events are posted, and the deliveries of each (the outbox: a
# delivery is inserted in the transaction of the status change it reports). No foreign
# keys: a delivery inserted by group commit must not fail its job's transaction because
# its webhook was deleted meanwhile; deleting a webhook deletes its deliveries, and a
# sender gives up one whose webhook or job is gone.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("url", Text(), nullable=False),
    Column("events", json_type(), nullable=False),  # a list of event types
    Column("filter", json_type(), nullable=False),  # the bulk actions' JSON filter
    Column("description", Text()),
    Column("secret", String(64), nullable=False),  # signs deliveries; never shown again
    Column("created_at", UtcDateTime(), nullable=False),
    # While paused, its deliveries are written but not sent (claims skip them).
    Column("paused", Boolean(), nullable=False, server_default=false()),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("webhook_id", Uuid(), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("job_id", Uuid(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),  # when the change happened
    Column("attempts", Integer(), nullable=False),
    Column("last_status_code", Integer()),
    Column("last_error", Text()),
    Column("delivered_at", UtcDateTime()),
    Column("given_up_at", UtcDateTime()),
    Column("next_attempt_at", UtcDateTime()),  # NULL once delivered or given up
    Column("lease_expires_at", UtcDateTime()),  # set while a sender holds it
)

# Due deliveries, oldest due first: only those still to send are in it.
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at,
    postgresql_where=webhook_deliveries.c.next_attempt_at.isnot(None),
    sqlite_where=webhook_deliveries.c.next_attempt_at.isnot(None),
)
# A webhook's deliveries, newest first (and deleting them with it).
Index(
    None,
    webhook_deliveries.c.webhook_id,
    webhook_deliveries.c.created_at,
    webhook_deliveries.c.id,
)

# One row, written by the migration that made the table and never again.
deployment = Table("deployment", metadata, Column("id", Uuid(), primary_key=True))
