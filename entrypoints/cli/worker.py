"""`chute worker`: claims jobs from the database and runs a processor on each.

The processor is the built-in `ingest` unless `--processor module:name` names another.
`name` may be:

- an async function `(job, context) -> dict | None` (or an object whose `__call__` is
  one): used as it is;
- any other callable taking no arguments (a factory, e.g. a class): called once at
  start, it must return such a processor.

The module must be importable (installed, or on PYTHONPATH). The worker starts only on a
storage that belongs to its database (see `startup`).

`--server URL` (or CHUTE_URL) runs the same loop and processors over HTTP against a
chute server (`RemoteEngine`, with `--api-key` or CHUTE_API_KEY): the worker then opens
no database and no storage of its own, and leaves rescuing expired leases to the
server. A server that cannot be reached, or refuses the key, stops it at start with one
line.

SIGTERM or SIGINT stops the worker: it claims no more, gives running jobs the grace
period, releases what is left, and exits 0. A second signal exits at once (its jobs
come back when their leases end).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any, cast

from chute.adapters.ingest.processor import ingest
from chute.adapters.remote import RemoteEngine
from chute.adapters.sqlalchemy import upgrade
from chute.application import ClaimFilter, SourceReader, WorkerEngine
from chute.application.worker import Processor, Worker, default_worker_id
from chute.domain import ChuteError, InvalidValue, Mode, SourceType
from chute.domain.validation import check_mime_pattern, check_queue_name, check_worker_id
from chute.entrypoints.bootstrap import Container, build_container, engine_of, settled
from chute.entrypoints.cli.metrics_server import serve_metrics
from chute.entrypoints.cli.startup import StartRefused, claim_storage
from chute.entrypoints.settings import Settings

log = logging.getLogger("chute.worker")
BUILT_IN = "ingest"


class BadProcessor(Exception):
    """`--processor` names nothing usable."""


def add_parser(commands: Any) -> None:
    """Add `chute worker` to the `chute` command's subcommands."""
    run = commands.add_parser(
        "worker", help="claim jobs and process them (migrates SQLite first; --server: over HTTP)"
    )
    run.add_argument("--processor", default=BUILT_IN, help="module:name of the processor "
                     "(default: the built-in ingest)")  # fmt: skip
    run.add_argument("--slots", type=_bounded(1, 100), help="jobs run at once (CHUTE_WORKER_SLOTS)")
    run.add_argument("--lease-seconds", type=_bounded(5, 3600),
                     help="lease of each claimed job (CHUTE_WORKER_LEASE_SECONDS)")  # fmt: skip
    run.add_argument("--grace-seconds", type=_seconds,
                     help="time running jobs get on stop (CHUTE_WORKER_GRACE_SECONDS)")  # fmt: skip
    run.add_argument("--worker-id", help="this worker's name (default: host:pid)")
    run.add_argument("--mode", action="append", type=Mode, choices=list(Mode),
                     help="claim only jobs of this mode (repeatable)")  # fmt: skip
    run.add_argument("--source-type", action="append", type=SourceType, choices=list(SourceType),
                     help="claim only jobs of this source type (repeatable)")  # fmt: skip
    run.add_argument("--mime-type", help="claim only jobs of this type (exact, or type/*)")
    run.add_argument("--queue", action="append", dest="queues", metavar="NAME",
                     help="claim only jobs of this queue (repeatable; default: all)")  # fmt: skip
    run.add_argument("--metrics-port", type=_bounded(1, 65535),
                     help="serve GET /metrics (Prometheus) on this port")  # fmt: skip
    run.add_argument("--metrics-host", default="127.0.0.1",
                     help="address of --metrics-port (default 127.0.0.1)")  # fmt: skip
    run.add_argument("--server", metavar="URL",
                     help="work for the chute server at URL over HTTP, with no database or "
                     "storage of its own (CHUTE_URL)")  # fmt: skip
    run.add_argument("--api-key", metavar="KEY", help="the API key of --server (CHUTE_API_KEY)")


def worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run a worker until SIGTERM/SIGINT; 0 after a clean drain, 2 on bad arguments."""
    try:
        processor = load_processor(args.processor)
        worker_id = check_worker_id(args.worker_id or default_worker_id())
        mime_type = check_mime_pattern(args.mime_type) if args.mime_type else None
        queues = frozenset(_queue_name(name) for name in args.queues or ())
    except (BadProcessor, InvalidValue) as e:
        print(f"chute worker: {e}", file=sys.stderr)
        return 2
    claim = ClaimFilter(
        modes=frozenset(args.mode or ()),
        source_types=frozenset(args.source_type or ()),
        mime_type=mime_type,
        queues=queues,
    )
    server = args.server or os.environ.get("CHUTE_URL")
    if server and args.metrics_port is not None:
        print("chute worker: --metrics-port: with --server, the server's GET /metrics has "
              "the counts", file=sys.stderr)  # fmt: skip
        return 2
    plan = _Plan(args, settings, processor, worker_id, claim)
    try:
        if server:
            key = args.api_key or os.environ.get("CHUTE_API_KEY") or None
            asyncio.run(_run_remote(plan, server, key))
        else:
            asyncio.run(_run(plan))
    except StartRefused as e:
        print(f"chute worker: {e}", file=sys.stderr)
        return e.exit_code
    return 0


def _queue_name(name: str) -> str:
    try:
        return check_queue_name(name)
    except InvalidValue as e:
        raise InvalidValue("queue", f"--queue {name!r}: {e.message}") from None


def load_processor(spec: str) -> Processor | None:
    """The processor `spec` names; None for the built-in (it needs the settings)."""
    if spec == BUILT_IN:
        return None
    module_name, _, name = spec.partition(":")
    if not (module_name and name):
        raise BadProcessor(f"--processor {spec!r}: expected module:name (or {BUILT_IN!r})")
    try:
        found: Any = importlib.import_module(module_name)
        for part in name.split("."):
            found = getattr(found, part)
    except ImportError as e:
        raise BadProcessor(f"--processor {spec!r}: cannot import {module_name}: {e}") from e
    except AttributeError:
        raise BadProcessor(f"--processor {spec!r}: {module_name} has no {name}") from None
    if _is_processor(found):
        return found  # type: ignore[no-any-return]
    if not callable(found):
        raise BadProcessor(f"--processor {spec!r}: {name} is not callable")
    try:
        made = found()
    except Exception as e:
        raise BadProcessor(f"--processor {spec!r}: the factory failed: {e!r}") from e
    if not _is_processor(made):
        raise BadProcessor(f"--processor {spec!r}: {name}() did not return an async processor")
    return made  # type: ignore[no-any-return]


def _is_processor(candidate: object) -> bool:
    if inspect.isclass(candidate):
        return False  # a class is a factory of processors, not one
    return inspect.iscoroutinefunction(candidate) or inspect.iscoroutinefunction(
        getattr(candidate, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


@dataclass(frozen=True)
class _Plan:
    """The worker the arguments, else the settings, ask for, on whichever engine."""

    args: argparse.Namespace
    settings: Settings
    processor: Processor | None  # None: the built-in, on the container's source readers
    worker_id: str
    claim: ClaimFilter

    async def work(self, engine: WorkerEngine, container: Container) -> None:
        """Run the worker on `engine` until SIGTERM/SIGINT."""
        args, settings = self.args, self.settings
        running = Worker(
            engine,
            self.processor or ingest(await _readers(container)),
            slots=args.slots or settings.worker_slots,
            worker_id=self.worker_id,
            lease_seconds=args.lease_seconds or settings.worker_lease_seconds,
            poll_seconds=settings.worker_poll_seconds,
            rescue_seconds=settings.rescue_interval_seconds,
            grace_seconds=_first(args.grace_seconds, settings.worker_grace_seconds),
            filter=self.claim,
        )
        _stop_on_signals(running)
        await running.run()


async def _run(plan: _Plan) -> None:
    args, settings = plan.args, plan.settings
    if settings.is_sqlite:  # as `chute serve`: an embedded database is brought up to date
        await upgrade(settings.database_url)
    container = build_container(settings)
    server: asyncio.Server | None = None
    try:
        engine = await engine_of(container)
        await claim_storage(engine, settings)
        if args.metrics_port is not None:
            metrics = container.metrics()
            if metrics is None:
                raise StartRefused("--metrics-port: metrics are off (CHUTE_METRICS=false)", 2)
            server = await serve_metrics(engine, metrics, args.metrics_host, args.metrics_port)
        await plan.work(engine, container)
    finally:
        if server is not None:
            server.close()
        await settled(container.shutdown_resources())


async def _run_remote(plan: _Plan, url: str, api_key: str | None) -> None:
    # The container gives the source readers only: the database and the storage it
    # could open are never asked for, so none of their settings matter here.
    container = build_container(plan.settings)
    try:
        async with RemoteEngine(url, api_key) as engine:
            await _check_server(engine, url)
            await plan.work(engine, container)
    finally:
        await settled(container.shutdown_resources())


async def _check_server(engine: RemoteEngine, url: str) -> None:
    """One request before the first claim, so that a wrong URL or key stops the worker
    with one line rather than a warning at every poll."""
    try:
        await engine.list_queues()
    except ChuteError as e:
        raise StartRefused(f"--server {url}: {e}", 1) from None


async def _readers(container: Container) -> dict[SourceType, SourceReader]:
    # A resource among them (the S3 reader) makes the answer awaitable. They are closed
    # with the container's resources, after the worker has stopped.
    return cast(dict[SourceType, SourceReader], await settled(container.source_readers()))


def _stop_on_signals(running: Worker) -> None:
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(number: int) -> None:
        if received:  # the second one: no more waiting
            log.warning("worker.killed", extra={"signal": signal.Signals(number).name})
            logging.shutdown()  # writes the lines that wait for the loop's round to end
            os._exit(128 + number)
        received.append(number)
        log.info("worker.stopping", extra={"signal": signal.Signals(number).name})
        running.stop()

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, on_signal, number)


def _first(value: float | None, default: float) -> float:
    return default if value is None else value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds, 0 or more")
    return value


def _bounded(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse
