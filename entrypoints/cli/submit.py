"""`chute submit FILE|URL|s3://... [...]`: jobs from files (uploaded, a few at a time,
each with its progress bar and one bar for them all) and from references (created in one
call); `--wait` then follows them live until every one has ended."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chute.adapters.remote import RemoteEngine, StreamEvent
from chute.application import NewJob
from chute.domain import DEFAULT_QUEUE, Job, JobStatus, Mode, Priority, SourceType
from chute.entrypoints.cli import follow, render
from chute.entrypoints.cli.bars import UploadBars
from chute.entrypoints.cli.client import (
    Exit,
    UsageError,
    add_connection,
    add_json,
    describe,
    run,
)
from chute.entrypoints.cli.filters import choices, metadata_value, moment, one_of, pair

UPLOADS_AT_ONCE = 4  # files uploading at a time: enough to fill a link, few for the server
BATCH = 1000  # the most jobs one create_jobs call takes
REFERENCES = {"http://": SourceType.URL, "https://": SourceType.URL, "s3://": SourceType.S3}


def add_parser(commands: Any) -> None:
    submit = commands.add_parser(
        "submit", help="create jobs from files (uploaded), URLs and s3:// objects"
    )
    submit.add_argument("sources", nargs="+", metavar="FILE|URL|s3://...")
    submit.add_argument("--queue", help=f"the jobs' queue (default {DEFAULT_QUEUE})")
    submit.add_argument("--priority", type=one_of(Priority), help=choices("priority", Priority))
    submit.add_argument("--mode", type=one_of(Mode), help=choices("detection mode", Mode))
    submit.add_argument(
        "--metadata",
        action="append",
        type=pair,
        default=[],
        metavar="K=V",
        help="metadata of every job (repeatable; 7, true, null are JSON)",
    )
    submit.add_argument(
        "--run-after",
        type=moment,
        metavar="TIME",
        help="claim no job before (RFC 3339 with an offset)",
    )
    submit.add_argument(
        "--wait",
        action="store_true",
        help="follow the jobs until they end; exit 1 if any failed or was cancelled",
    )
    add_connection(submit)
    add_json(submit)


@dataclass
class Sources:
    files: list[Path] = field(default_factory=list)
    references: list[tuple[SourceType, str]] = field(default_factory=list)


def sources_of(texts: list[str]) -> Sources:
    """Files and references, in the order given; a file that is not there is refused
    before anything is sent."""
    found = Sources()
    for text in texts:
        kind = next((k for prefix, k in REFERENCES.items() if text.startswith(prefix)), None)
        if kind is not None:
            found.references.append((kind, text))
        elif Path(text).is_file():
            found.files.append(Path(text))
        else:
            raise UsageError(f"{text}: no such file (nor an http(s):// or s3:// reference)")
    return found


def submit(args: argparse.Namespace) -> int:
    return run("submit", lambda engine: _submit(engine, args), args)


async def _submit(engine: RemoteEngine, args: argparse.Namespace) -> int:
    sources = sources_of(args.sources)
    metadata = {key: metadata_value(value) for key, value in args.metadata}
    jobs = await _references(engine, args, sources.references, metadata)
    uploaded, failures = await _uploads(engine, args, sources.files, metadata)
    jobs += uploaded
    code = _print_failures(args, failures)
    if args.wait and jobs:
        ended = await follow.until_ended(engine, jobs, _shower(args))
        jobs = [ended.get(job.id, job) for job in jobs]
        bad = [job for job in jobs if job.status in (JobStatus.FAILED, JobStatus.CANCELLED)]
        code = code or (Exit.FAILED if bad else Exit.OK)
    _print_jobs(args, jobs)
    return code


async def _references(
    engine: RemoteEngine,
    args: argparse.Namespace,
    references: list[tuple[SourceType, str]],
    metadata: dict[str, Any],
) -> list[Job]:
    new = [
        NewJob(source_type=kind, source_uri=uri, metadata=metadata, **_options(args))
        for kind, uri in references
    ]
    jobs: list[Job] = []
    for start in range(0, len(new), BATCH):
        jobs += (await engine.create_jobs(new[start : start + BATCH])).jobs
    return jobs


def _options(args: argparse.Namespace) -> dict[str, Any]:
    given = {
        "queue": args.queue,
        "priority": args.priority,
        "mode": args.mode,
        "run_after": args.run_after,
    }
    return {key: value for key, value in given.items() if value is not None}


async def _uploads(
    engine: RemoteEngine, args: argparse.Namespace, files: list[Path], metadata: dict[str, Any]
) -> tuple[list[Job], list[tuple[Path, BaseException]]]:
    """Upload `files`, `UPLOADS_AT_ONCE` at a time; the jobs in the files' order, and
    the files that failed with their errors."""
    if not files:
        return [], []
    slots = asyncio.Semaphore(UPLOADS_AT_ONCE)
    results: list[Job | BaseException | None] = [None] * len(files)
    sizes = [path.stat().st_size for path in files]
    bars = UploadBars([path.name for path in files], sizes)
    with bars.progress:

        async def one(n: int) -> None:
            async with slots:
                progress = bars.start(n)
                try:
                    results[n] = await engine.upload_file(
                        files[n], metadata=metadata or None, progress=progress, **_options(args)
                    )
                except Exception as e:  # the other files go on; it is told at the end
                    results[n] = e
                bars.end(n, failed=not isinstance(results[n], Job))

        await asyncio.gather(*(one(n) for n in range(len(files))))
    jobs = [result for result in results if isinstance(result, Job)]
    failed = [
        (path, r) for path, r in zip(files, results, strict=True) if isinstance(r, BaseException)
    ]
    return jobs, failed


def _print_failures(args: argparse.Namespace, failures: list[tuple[Path, BaseException]]) -> int:
    """Each failed upload on stderr; the exit code of the first (0 when none failed)."""
    codes = []
    for path, error in failures:
        code, message = describe(error, args.server)
        if code is None:
            raise error
        codes.append(code)
        print(f"chute submit: {path}: {message}", file=sys.stderr)
    return codes[0] if codes else Exit.OK


def _shower(args: argparse.Namespace) -> Callable[[StreamEvent], None]:
    def show(event: StreamEvent) -> None:
        line = follow.describe(event)
        if args.json:  # stdout is for the one JSON document
            print(line, file=sys.stderr, flush=True)
        else:
            print(line, flush=True)

    return show


def _print_jobs(args: argparse.Namespace, jobs: list[Job]) -> None:
    if args.json:
        render.print_json({"jobs": [render.job_json(job) for job in jobs]})
    elif jobs:
        render.show(render.jobs_table(jobs))
