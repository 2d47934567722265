"""The raw-parts baseline of `list`: chute's first page of jobs from its parts alone.

A bare ASGI app (no FastAPI, no Starlette, no SQLAlchemy, no Pydantic) that answers
`GET /api/v1/jobs` (the first page, newest first, `limit` 50 unless the query gives
another, with `total` counted up to the cap) and `GET /healthz`. For the page it runs
the very statements chute runs for that request (found by logging them: SQLAlchemy's
`before_cursor_execute` on the engine, and PostgreSQL's `log_statement=all`), through
the raw driver of each database, and writes the rows with orjson into the JSON chute
answers (the same fields, values and order; `bench/listing.py` checks the two agree):

    SQLite (aiosqlite, as chute's engine)  PostgreSQL (asyncpg; no transaction, as
    BEGIN                                  chute's read-only units)
    PAGE_SQLITE  (51, 0)                   PAGE_POSTGRES  (51)
    COUNT_SQLITE (1001, 0)                 COUNT_POSTGRES (1001)
    ROLLBACK (the driver's rollback())

The connections are set up as chute's (SQLite's pragmas; PostgreSQL's server
settings), pooled as simply as the drivers allow: a list of idle aiosqlite
connections, an asyncpg pool that runs no reset query when a connection comes back
(no request leaves a transaction open). `next_cursor` is opaque: this one is
base64 of the last item's keyset, not chute's encoding (its filter hash is chute's code).

It runs on uvicorn with `chute serve`'s options (httptools bounded as chute bounds it,
asyncio's loop, no access log, the same limits from chute's settings) and its
collector tuning.

    python -m bench.list_raw_app --port 8002 --database-url sqlite+aiosqlite:///jobs.db
"""

from __future__ import annotations

import argparse
import base64
import math
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# The statements of chute's `list_jobs` for a first page with `count`, as its engine
# sends them (whitespace included).
_COLUMNS = (
    "SELECT jobs.id, jobs.status, jobs.source_type, jobs.source_uri, jobs.file_name, "
    "jobs.file_size, jobs.mime_type, jobs.priority, jobs.mode, jobs.metadata, "
    "jobs.attempts, jobs.max_attempts, jobs.last_error, jobs.worker_id, "
    "jobs.lease_seconds, jobs.lease_expires_at, jobs.run_after, jobs.started_at, "
    "jobs.finished_at, jobs.progress, jobs.progress_message, jobs.result, "
    "jobs.created_at, jobs.updated_at, jobs.content_key, jobs.queue, jobs.schedule, "
    "jobs.limit_part, jobs.trace_context, "
    "detection_results.mime_type AS detection_mime_type, "
    "detection_results.label AS detection_label, "
    "detection_results.group_name AS detection_group_name, "
    "detection_results.confidence AS detection_confidence, "
    "detection_results.detector AS detection_detector, "
    "detection_results.sha256 AS detection_sha256, "
    "detection_results.size AS detection_size, "
    "detection_results.detected_at AS detection_detected_at \n"
    "FROM jobs LEFT OUTER JOIN detection_results ON detection_results.job_id = jobs.id "
    "ORDER BY jobs.created_at DESC, jobs.id DESC"
)
PAGE_SQLITE = _COLUMNS + "\n LIMIT ? OFFSET ?"
COUNT_SQLITE = (
    "SELECT count(*) AS count_1 \nFROM (SELECT 1 \nFROM jobs\n LIMIT ? OFFSET ?) AS anon_1"
)
PAGE_POSTGRES = _COLUMNS + " \n LIMIT $1::INTEGER"
COUNT_POSTGRES = (
    "SELECT count(*) AS count_1 \nFROM (SELECT 1 \nFROM jobs \n LIMIT $1::INTEGER) AS anon_1"
)

# chute.adapters.sqlalchemy.engine's SQLite pragmas and PostgreSQL session settings.
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
POSTGRES_SETTINGS = {"plan_cache_mode": "force_custom_plan", "application_name": "chute-raw"}

COUNT_CAP = 1000  # CHUTE_COUNT_CAP's default
DEFAULT_LIMIT = 50
PRIORITIES = ("low", "normal", "high", "urgent")  # by the rank the database keeps


def _sqlite_time(text: str | None) -> str | None:
    # Stored as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, always six digits); chute writes
    # "YYYY-MM-DDTHH:MM:SS.ffffffZ".
    return None if text is None else f"{text[:10]}T{text[11:]}Z"


def _sqlite_uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def sqlite_item(r: Sequence[Any]) -> dict[str, Any]:
    """A jobs row (joined to its detection result) of SQLite as chute writes the job."""
    t = _sqlite_time
    return {
        "id": _sqlite_uuid(r[0]),
        "status": r[1],
        "source_type": r[2],
        "source_uri": r[3],
        "file_name": r[4],
        "file_size": r[5],
        "mime_type": r[6],
        "priority": PRIORITIES[r[7]],
        "mode": r[8],
        "metadata": orjson.loads(r[9]),
        "attempts": r[10],
        "max_attempts": r[11],
        "queue": r[25],
        "schedule": r[26],
        "last_error": r[12],
        "created_at": t(r[22]),
        "updated_at": t(r[23]),
        "detection": None
        if r[33] is None
        else {
            "mime_type": r[29],
            "label": r[30],
            "group": r[31],
            "confidence": r[32],
            "detector": r[33],
            "sha256": r[34],
            "size": r[35],
            "detected_at": t(r[36]),
        },
        "worker_id": r[13],
        "lease_expires_at": t(r[15]),
        "run_after": t(r[16]),
        "started_at": t(r[17]),
        "finished_at": t(r[18]),
        "progress": r[19],
        "progress_message": r[20],
        "result": None if r[21] is None else orjson.loads(r[21]),
    }


def _whole_second(moment: datetime) -> str:
    # orjson leaves a zero fraction out; chute always writes six digits.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def postgres_item(r: Sequence[Any]) -> dict[str, Any]:
    """A jobs row of PostgreSQL (aware UTC datetimes, which orjson writes with `Z`;
    jsonb as text; asyncpg's UUID, which orjson does not take) as chute writes the job."""
    w = _whole_second
    created, updated, detected = r[22], r[23], r[36]
    leased, after, started, finished = r[15], r[16], r[17], r[18]
    return {
        "id": str(r[0]),
        "status": r[1],
        "source_type": r[2],
        "source_uri": r[3],
        "file_name": r[4],
        "file_size": r[5],
        "mime_type": r[6],
        "priority": PRIORITIES[r[7]],
        "mode": r[8],
        "metadata": orjson.loads(r[9]),
        "attempts": r[10],
        "max_attempts": r[11],
        "queue": r[25],
        "schedule": r[26],
        "last_error": r[12],
        "created_at": created if created.microsecond else w(created),
        "updated_at": updated if updated.microsecond else w(updated),
        "detection": None
        if r[33] is None
        else {
            "mime_type": r[29],
            "label": r[30],
            "group": r[31],
            "confidence": r[32],
            "detector": r[33],
            "sha256": r[34],
            "size": r[35],
            "detected_at": detected if detected.microsecond else w(detected),
        },
        "worker_id": r[13],
        "lease_expires_at": leased if leased is None or leased.microsecond else w(leased),
        "run_after": after if after is None or after.microsecond else w(after),
        "started_at": started if started is None or started.microsecond else w(started),
        "finished_at": finished if finished is None or finished.microsecond else w(finished),
        "progress": r[19],
        "progress_message": r[20],
        "result": None if r[21] is None else orjson.loads(r[21]),
    }


class SqlitePages:
    """Pages from a SQLite file through aiosqlite, on pooled connections."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.idle: list[Any] = []

    async def open(self) -> None:
        self.idle.append(await self._connect())

    async def _connect(self) -> Any:
        import aiosqlite

        # isolation_level=None: BEGIN is sent as chute's engine sends it.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        for pragma in SQLITE_PRAGMAS:
            await conn.execute_fetchall(pragma)
        return conn

    async def rows(self, limit: int) -> tuple[list[Any], int]:
        conn = self.idle.pop() if self.idle else await self._connect()
        try:
            await conn.execute_fetchall("BEGIN")
            try:
                rows = list(await conn.execute_fetchall(PAGE_SQLITE, (limit + 1, 0)))
                ((counted,),) = await conn.execute_fetchall(COUNT_SQLITE, (COUNT_CAP + 1, 0))
            finally:
                await conn.rollback()
        except BaseException:
            await conn.close()
            raise
        self.idle.append(conn)
        return rows, counted

    async def close(self) -> None:
        while self.idle:
            await self.idle.pop().close()


async def _no_reset(conn: Any) -> None:
    return None  # no request leaves a transaction open: nothing to reset


class PostgresPages:
    """Pages from PostgreSQL through an asyncpg pool."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: Any = None

    async def open(self) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=10,
            reset=_no_reset,
            timeout=5,
            command_timeout=30,
            server_settings=POSTGRES_SETTINGS,
        )

    async def rows(self, limit: int) -> tuple[list[Any], int]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(PAGE_POSTGRES, limit + 1)
            counted = await conn.fetchval(COUNT_POSTGRES, COUNT_CAP + 1)
        return rows, counted

    async def close(self) -> None:
        await self.pool.close()


def page_body(rows: list[Any], counted: int, limit: int, item: Callable[..., Any]) -> bytes:
    """chute's `JobListResponse` of a first page, written by orjson."""
    items = [item(r) for r in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        last = items[-1]
        keyset = {"s": "-created_at", "c": last["created_at"], "i": last["id"]}
        encoded = base64.urlsafe_b64encode(orjson.dumps(keyset, option=orjson.OPT_UTC_Z))
        cursor = encoded.rstrip(b"=").decode()
    total = min(counted, COUNT_CAP)
    page = {
        "items": items,
        "total": total,
        "total_exact": counted <= COUNT_CAP,
        "page": 1,
        "limit": limit,
        "pages": math.ceil(total / limit),
        "next_cursor": cursor,
    }
    return orjson.dumps(page, option=orjson.OPT_UTC_Z)


def make_app(database_url: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app on `database_url` (sqlite+aiosqlite:///PATH or postgresql[+asyncpg]://)."""
    pages: SqlitePages | PostgresPages
    if database_url.startswith("sqlite"):
        pages, item = SqlitePages(database_url.split(":///", 1)[1]), sqlite_item
    else:
        pages = PostgresPages(database_url.replace("postgresql+asyncpg://", "postgresql://"))
        item = postgres_item

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, pages)
            return
        if scope["type"] != "http":
            return
        path, query = scope["path"], scope["query_string"]
        if scope["method"] != "GET":
            await _answer(send, 405, b'{"detail":"GET only"}')
        elif path == "/healthz":
            await _answer(send, 200, b'{"status":"ok"}')
        elif path == "/api/v1/jobs":
            limit = _limit(query)
            if limit is None:
                await _answer(send, 400, b'{"detail":"the raw baseline takes limit only"}')
                return
            rows, counted = await pages.rows(limit)
            await _answer(send, 200, page_body(rows, counted, limit, item))
        else:
            await _answer(send, 404, b'{"detail":"not found"}')

    return app


def _limit(query: bytes) -> int | None:
    if not query:
        return DEFAULT_LIMIT
    fields = dict(parse_qsl(query.decode()))
    if set(fields) != {"limit"} or not fields["limit"].isdigit():
        return None
    limit = int(fields["limit"])
    return limit if 1 <= limit <= 1000 else None


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send, pages: SqlitePages | PostgresPages) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await pages.open()
            except Exception as e:
                await send({"type": "lifespan.startup.failed", "message": repr(e)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pages.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def main() -> int:
    import uvicorn
    from chute.entrypoints.cli.serve import server_options, tune_garbage_collector
    from chute.entrypoints.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bench.list_raw_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    settings = Settings()  # for the server limits only: chute's defaults, or $CHUTE_*
    app = make_app(args.database_url)
    tune_garbage_collector()  # as `chute serve` does
    uvicorn.run(app, host=args.host, port=args.port, **server_options(settings))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
