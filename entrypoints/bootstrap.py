"""The composition root: settings -> adapters -> engine, in one dependency-injection
container. It imports no web framework, so that `chute serve`, `chute worker`,
`chute purge`, the benchmarks, the tests and library users build the engine one way.

Which adapter implements each port here (provider: port -> adapter):

    database       UnitOfWorkFactory   chute.adapters.sqlalchemy.SqlDatabase
                   (jobs, events, detections, idempotency keys; SQLite or PostgreSQL
                   by CHUTE_DATABASE_URL)
    file_store     FileStore           chute.adapters.storage.LocalFileStore (a folder) or
                                       chute.adapters.storage.S3FileStore (s3://bucket/prefix,
                                       signed in by AWS_*), by CHUTE_STORAGE_URL
    libmagic       ContentDetector     chute.adapters.detection.LibmagicDetector (mode fast)
    magika         ContentDetector     chute.adapters.detection.MagikaDetector (mode accurate)
    auto_detector  ContentDetector     chute.adapters.detection.AutoDetector (mode auto)
    clock          Clock               chute.adapters.system.SystemClock
    calendar       Calendar            chute.adapters.cron.CronCalendar (schedules' cron)
    change_signal  ChangeSignal        chute.adapters.sqlalchemy.PostgresChangeSignal (LISTEN)
                                       or chute.adapters.system.PollingSignal (SQLite)
    ids            IdGenerator         chute.adapters.system.UuidV7Generator
    url_reader     SourceReader        chute.adapters.ingest.UrlSourceReader (url jobs; the
                                       SSRF-safe fetcher, CHUTE_FETCH_*)
    s3_reader      SourceReader        chute.adapters.ingest.S3SourceReader (s3 jobs; AWS_*)
    webhook_sender WebhookSender       chute.adapters.webhooks.HttpWebhookSender (signed
                                       POSTs on the fetcher's address rules, CHUTE_WEBHOOK_*)
    telemetry      Telemetry           chute.adapters.telemetry.ChuteTelemetry: Prometheus
                                       metrics unless CHUTE_METRICS=false, OpenTelemetry
                                       spans when OTEL_EXPORTER_OTLP_ENDPOINT is set

Workers get their processor from `chute worker` (`chute.adapters.ingest.ingest` on
`source_readers` unless `--processor` names another). The in-memory adapters
(`chute.adapters.memory`) take the place of the database and the file store in a test,
scoped to it:
`container.database.override(providers.Object(MemoryDatabase()))`.

The container reads top down: configuration, then resources (things that must be
closed), then the adapters and the engine. Nothing is built or connected until it is
first asked for.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

from chute.adapters.cron import CronCalendar
from chute.adapters.detection import AutoDetector, LibmagicDetector, MagikaDetector
from chute.adapters.ingest import S3SourceReader, UrlFetcher, UrlSourceReader
from chute.adapters.s3 import S3Connection
from chute.adapters.s3_multipart import MultipartUploads
from chute.adapters.sqlalchemy import PostgresChangeSignal, SqlDatabase, create_engine_for
from chute.adapters.storage import LocalFileStore, S3FileStore
from chute.adapters.system import PollingSignal, SystemClock, UuidV7Generator
from chute.adapters.telemetry import ChuteTelemetry, OtelTracing, PrometheusMetrics
from chute.adapters.telemetry.otel import otlp_provider
from chute.adapters.webhooks import HttpWebhookSender
from chute.application import OrchestrationEngine, RetryPolicy, UploadLimits, WebhookPolicy
from chute.application.ports import ChangeSignal
from chute.domain import Mode, SourceType
from chute.entrypoints.settings import Settings
from dependency_injector import containers, providers
from sqlalchemy.ext.asyncio import AsyncEngine

OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


async def tracing_resource() -> AsyncIterator[OtelTracing | None]:
    """Spans sent over OTLP/HTTP when the standard OTEL_EXPORTER_OTLP_ENDPOINT (or its
    traces-only twin) is set, else None: no tracing at all. What is batched is sent at
    the end. The exporter reads the other OTEL_* variables itself."""
    if not any(os.environ.get(name) for name in OTLP_ENDPOINTS):
        yield None
        return
    tracing = OtelTracing(otlp_provider(os.environ.get("OTEL_SERVICE_NAME") or "chute"))
    try:
        yield tracing
    finally:
        tracing.shutdown()


def metrics_of(enabled: bool) -> PrometheusMetrics | None:
    """The app's own metrics registry (CHUTE_METRICS, on by default), or None."""
    return PrometheusMetrics() if enabled else None


async def sql_engine_resource(
    url: str, tracing: OtelTracing | None = None
) -> AsyncIterator[AsyncEngine]:
    """The SQLAlchemy engine for the app's lifetime; its connections are closed at the end.
    With tracing, each statement is a span."""
    engine = create_engine_for(url)
    if tracing is not None:
        tracing.instrument_sql(engine.sync_engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def sql_database_resource(engine: AsyncEngine) -> AsyncIterator[SqlDatabase]:
    """The storage ports on the engine; at the end, the creates already handed to group
    commit are committed (and answered) before the engine's connections close."""
    database = SqlDatabase(engine)
    try:
        yield database
    finally:
        await database.close()


async def change_signal_resource(url: str, poll_seconds: float) -> AsyncIterator[ChangeSignal]:
    """How the live feed learns of new events: PostgreSQL's notifications, or looking
    every `poll_seconds` (SQLite, written by other processes too, cannot tell)."""
    signal: ChangeSignal = (
        PostgresChangeSignal(url) if url.startswith("postgresql") else PollingSignal(poll_seconds)
    )
    try:
        yield signal
    finally:
        await signal.close()


async def s3_reader_resource(
    connection: S3Connection, max_bytes: int
) -> AsyncIterator[S3SourceReader]:
    """The reader of s3 jobs; its clients are let go at the end."""
    reader = S3SourceReader(connection, max_bytes=max_bytes)
    try:
        yield reader
    finally:
        await reader.aclose()


def s3_file_store(connection: S3Connection, bucket: str, prefix: str) -> S3FileStore:
    """The file store in `bucket` under `prefix`, sweeping dead processes' unfinished
    multipart uploads too."""
    uploads = MultipartUploads(connection, bucket, prefix)
    return S3FileStore(connection.bucket(bucket, prefix), uploads)


class Container(containers.DeclarativeContainer):
    """chute's object graph. Build it with `build_container(settings)`."""

    # -- configuration ------------------------------------------------------------------
    config = providers.Configuration(strict=True)
    s3_connection = providers.Singleton(S3Connection.from_env)  # the standard AWS_* settings

    # -- resources ----------------------------------------------------------------------
    tracing = providers.Resource(tracing_resource)
    sql_engine = providers.Resource(sql_engine_resource, url=config.database_url, tracing=tracing)
    s3_reader = providers.Resource(
        s3_reader_resource, s3_connection, max_bytes=config.max_upload_bytes
    )

    change_signal = providers.Resource(
        change_signal_resource, url=config.database_url, poll_seconds=config.stream_poll_seconds
    )

    # -- adapters -----------------------------------------------------------------------
    database = providers.Resource(sql_database_resource, sql_engine)
    file_store = providers.Selector(
        config.storage.kind,
        local=providers.Singleton(LocalFileStore, config.storage.path),
        s3=providers.Singleton(
            s3_file_store, s3_connection, config.storage.bucket, config.storage.prefix
        ),
    )
    libmagic = providers.Singleton(LibmagicDetector)
    magika = providers.Singleton(MagikaDetector)  # loads its model on first use
    auto_detector = providers.Singleton(AutoDetector, libmagic, magika)
    detectors = providers.Dict(
        {Mode.FAST: libmagic, Mode.ACCURATE: magika, Mode.AUTO: auto_detector}
    )
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(UuidV7Generator)
    calendar = providers.Singleton(CronCalendar)
    limits = providers.Singleton(
        UploadLimits,
        max_file_bytes=config.max_upload_bytes,
        max_files=config.max_files_per_upload,
        allowed_types=config.allowed_types,
    )

    retry = providers.Singleton(
        RetryPolicy,
        base_seconds=config.retry_base_seconds,
        cap_seconds=config.retry_cap_seconds,
    )
    fetcher = providers.Singleton(
        UrlFetcher,
        timeout_seconds=config.fetch_timeout_seconds,
        max_redirects=config.fetch_max_redirects,
        max_bytes=config.max_upload_bytes,
        allow_private=config.fetch_allow_private,
    )
    url_reader = providers.Singleton(UrlSourceReader, fetcher)
    # A singleton, not a resource: an async resource would make the engine's provider
    # async for every caller. `chute serve`'s webhook duty closes its connections.
    webhook_sender = providers.Singleton(
        HttpWebhookSender, allow_private=config.fetch_allow_private
    )
    webhook_policy = providers.Singleton(
        WebhookPolicy,
        retry_base_seconds=config.webhook_retry_base_seconds,
        timeout_seconds=config.webhook_timeout_seconds,
    )
    source_readers = providers.Dict({SourceType.URL: url_reader, SourceType.S3: s3_reader})
    metrics = providers.Singleton(metrics_of, config.metrics)
    telemetry = providers.Singleton(ChuteTelemetry, metrics=metrics, tracing=tracing)

    # -- use cases ----------------------------------------------------------------------
    engine = providers.Singleton(
        OrchestrationEngine,
        uow=database,
        files=file_store,
        detectors=detectors,
        clock=clock,
        ids=ids,
        limits=limits,
        retry=retry,
        count_cap=config.count_cap,
        calendar=calendar,
        webhook_sender=webhook_sender,
        webhook_policy=webhook_policy,
        telemetry=telemetry,
    )


async def settled(result: Any) -> Any:
    """`result`, awaited when it is awaitable: dependency-injector answers with an
    awaitable only when an async resource (the SQL engine) lies under the provider."""
    return await result if inspect.isawaitable(result) else result


async def engine_of(container: Container) -> OrchestrationEngine:
    """The container's engine, built (and its resources opened) on first use."""
    return cast(OrchestrationEngine, await settled(container.engine()))


def chute_version() -> str:
    """The installed distribution's version (`0.0.0` when run from a tree never installed)."""
    try:
        return version("chute")
    except PackageNotFoundError:
        return "0.0.0"


def build_container(settings: Settings | None = None) -> Container:
    """A container configured from `settings` (from the environment when not given)."""
    settings = settings or Settings()
    storage = settings.storage
    container = Container()
    container.config.from_dict(
        settings.model_dump()
        | {
            "storage": {
                "kind": storage.kind,
                "path": storage.path,
                "bucket": storage.bucket,
                "prefix": storage.prefix,
            }
        }
    )
    return container
