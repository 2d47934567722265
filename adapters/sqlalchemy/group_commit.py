"""Group commit: the inserts of many units of work, committed in one transaction.

A transaction costs far more than the rows it inserts: on SQLite, aiosqlite hands
every statement to its thread and back (each hand-off waits for the GIL while the
event loop is busy); on PostgreSQL, every statement and the COMMIT are round trips.
Units of work opened with `deferred=True` that only insert (creating jobs) hand their
rows to the `GroupCommitter` of their database at `commit()`. Its one task drains the
queue: while it writes one group, the units that arrive wait and form the next, so
a group grows with the load and no timer delays a lone caller.

Each caller is answered only after COMMIT returned, so its rows are as durable as
those of its own transaction would have been. A group is written optimistically:
one `executemany` per table for all its units. When a row fails (a constraint: a
duplicate idempotency key, a job id that exists; a value the driver cannot encode or
bind, or the database cannot store: a surrogate, NUL on PostgreSQL, a number or a
string too large), the transaction is rolled back and written again with each unit in
its own SAVEPOINT: the failing units get their own error (`IdempotencyConflict`,
`ValidationFailed` for a value the database refused, the error itself otherwise), the
others commit. An error that says the database is away (the connection lost, the file
locked by another process past busy_timeout) fails the whole group instead, as it
would have failed each of its transactions.

A caller cancelled while it waits is let go at once: its rows are dropped if its
group has not begun, and committed with the group otherwise (as a transaction whose
COMMIT was sent before the cancellation would be). Either way the others of its group
are answered as if it had not been there.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import sqlite3
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chute.adapters.sqlalchemy.errors import unavailable, unstorable, unstorable_rows
from chute.adapters.sqlalchemy.tables import UtcDateTime, metadata
from chute.application.errors import ServiceUnavailable
from sqlalchemy import DateTime, Table, exc, insert
from sqlalchemy import Insert as InsertStatement
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("chute.adapters.sqlalchemy")

MAX_GROUP_ROWS = 20_000  # about 0.1 s of inserts: later units wait for the next group
MAX_ROWS_PER_INSERT = 512  # rows of one multi-row INSERT

Conflict = Callable[[exc.IntegrityError], Exception]
Outcome = Exception | None  # None: committed
Writer = Callable[[list[list["Insert"]]], Awaitable[list[Outcome]]]

# Parents before children, so that one transaction can insert a group's rows table by table.
_TABLE_ORDER = {table: rank for rank, table in enumerate(metadata.sorted_tables)}
_INSERTS = {table: insert(table) for table in metadata.sorted_tables}


def insert_into(table: Table) -> InsertStatement:
    """The INSERT of every column of `table` (one statement object, compiled once)."""
    stmt = _INSERTS.get(table)
    return insert(table) if stmt is None else stmt


class _Plan:
    """An INSERT compiled once for a dialect and a set of columns, with each column's
    bind processor: rows become the driver's parameter tuples in one pass. The same
    SQL and the same processors as `conn.execute(insert(table), rows)`, without the
    per-row bookkeeping that made up half of the cost of inserting a job.

    Many rows go in one statement. On SQLite (`VALUES (...), (...), ...`): the sqlite3
    module takes and releases the GIL around every step, so `executemany` needed the GIL
    back after each row, and waited for it as long as the event loop held it; one
    statement of hundreds of rows waits once, and costs a third less besides. On
    PostgreSQL (`INSERT ... SELECT $1::text, u.c1, ... FROM unnest($2::uuid[], ...) AS
    u(c1, ...)`): one array a column, whatever the number of rows, so that the statement
    is small and planned once, and one value for a column that every row shares (most
    of a batch's columns: its status, times, queue, the columns still empty), which
    asyncpg would otherwise encode once a row. A `VALUES` row of 28 parameters a job
    cost the database twice as much (parsing and binding thousands of parameters), and
    the client more than twice (docs/performance.md, "Creating in batches").
    """

    def __init__(self, conn: Connection, table: Table, keys: tuple[str, ...]) -> None:
        dialect = conn.dialect
        # Inline: no RETURNING of generated keys, which nothing here reads.
        compiled = insert(table).inline().compile(dialect=dialect, column_keys=list(keys))
        self.sql = str(compiled)
        order = compiled.positiontup or ()
        self.processed: list[tuple[str, Callable[[Any], Any] | None]] = [
            (key, table.c[key].type.dialect_impl(dialect).bind_processor(dialect)) for key in order
        ]
        self._times = {
            key for key in order if isinstance(table.c[key].type, DateTime | UtcDateTime)
        }
        head, values, row = self.sql.partition(" VALUES ")
        self.rows_per_statement = 1
        self._arrays = dialect.name == "postgresql" and bool(order)
        # No length in the casts: a cast to varchar(n) would cut a longer value short,
        # where the column's own type refuses it.
        self._types = [
            _ARRAY_TYPE_LENGTH.sub("", table.c[key].type.compile(dialect))
            for key in (order if self._arrays else ())
        ]
        self._into = head  # INSERT INTO table (columns)
        if dialect.name == "sqlite" and order:
            variables = _sqlite_variable_limit(conn)
            self.rows_per_statement = max(1, min(MAX_ROWS_PER_INSERT, variables // len(order)))
        self._head, self._row = head + values, row
        self._statements: dict[int, str] = {1: self.sql}
        self._unnests: dict[tuple[bool, ...], str] = {}

    def _processors(self, rows: int) -> list[tuple[str, Callable[[Any], Any] | None]]:
        if rows == 1:
            return self.processed
        # A time is converted once however many rows hold it (every job of a batch, and
        # its event, carry the same one): such conversions were a third of it.
        times = self._times
        return [(k, _memo(p) if p and k in times else p) for k, p in self.processed]

    def parameters(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The driver's parameters of each row."""
        processed = self._processors(len(rows))
        return [
            tuple([row[key] if proc is None else proc(row[key]) for key, proc in processed])
            for row in rows
        ]

    def columns(self, rows: list[dict[str, Any]]) -> tuple[list[Any], ...]:
        """The driver's parameters of each column (one array a column)."""
        return tuple(
            [row[key] for row in rows] if proc is None else [proc(row[key]) for row in rows]
            for key, proc in self._processors(len(rows))
        )

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if self._arrays and len(rows) > 1:
            self._run_unnest(conn, rows)
            return
        parameters = self.parameters(rows)
        if self.rows_per_statement == 1:
            conn.exec_driver_sql(self.sql, parameters)
            return
        start = 0
        while start < len(parameters):
            # Chunks of powers of two: few distinct statements, each prepared once.
            count = min(len(parameters) - start, self.rows_per_statement)
            count = 1 << (count.bit_length() - 1)
            chunk = parameters[start : start + count]
            conn.exec_driver_sql(self._statement(count), tuple(v for row in chunk for v in row))
            start += count

    def _run_unnest(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """PostgreSQL: one array a column, but one value for a column every row shares
        (a batch's status, times, queue, and its columns left empty): asyncpg encodes
        each element of an array on its own, and most of a new job's columns are alike."""
        columns = self.columns(rows)
        shared = tuple(column.count(column[0]) == len(column) for column in columns)
        if all(shared):
            shared = (False, *shared[1:])  # some array must give the number of rows
        sql = self._unnests.get(shared)
        if sql is None:
            sql = self._unnests[shared] = self._unnest(shared)
        values = tuple(c[0] if one else c for c, one in zip(columns, shared, strict=True))
        conn.exec_driver_sql(sql, values)

    def _unnest(self, shared: tuple[bool, ...]) -> str:
        """`INSERT ... SELECT $1::uuid, u.c1, ... FROM unnest($2::text[], ...) AS u(c1, ...)`."""
        selected, arrays, names = [], [], []
        for n, (one, kind) in enumerate(zip(shared, self._types, strict=True)):
            if one:
                selected.append(f"${n + 1}::{kind}")
            else:
                selected.append(f"u.c{n}")
                arrays.append(f"${n + 1}::{kind}[]")
                names.append(f"c{n}")
        return (
            f"{self._into} SELECT {', '.join(selected)}"
            f" FROM unnest({', '.join(arrays)}) AS u({', '.join(names)})"
        )

    def _statement(self, count: int) -> str:
        """The INSERT of `count` rows (SQLite's `?` are numbered by position)."""
        statement = self._statements.get(count)
        if statement is None:
            statement = self._statements[count] = self._head + ", ".join([self._row] * count)
        return statement


_ARRAY_TYPE_LENGTH = re.compile(r"\(\d+\)")


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`process`, remembering its answer for each value (equal values, equal answers)."""
    done: dict[Any, Any] = {}

    def memoized(value: Any) -> Any:
        try:
            return done[value]
        except KeyError:
            done[value] = answer = process(value)
            return answer

    return memoized


def _sqlite_variable_limit(conn: Connection) -> int:
    """How many parameters one statement of this SQLite connection may hold."""
    driver = conn.connection.dbapi_connection
    getlimit = getattr(driver, "getlimit", None)  # the sqlite3 module's (Python 3.11)
    if getlimit is None:
        return 999  # the smallest limit any SQLite had
    return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))


_plans: weakref.WeakKeyDictionary[Dialect, dict[tuple[Table, tuple[str, ...]], _Plan]] = (
    weakref.WeakKeyDictionary()
)


def _execute_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """`conn.execute(insert(table), rows)`, faster where the dialect's parameters are
    positional (SQLite, asyncpg); all rows must have the keys of the first."""
    if not conn.dialect.positional:
        conn.execute(insert_into(table), rows)
        return
    keys = tuple(rows[0])
    plans = _plans.setdefault(conn.dialect, {})
    plan = plans.get((table, keys))
    if plan is None:
        plan = plans[table, keys] = _Plan(conn, table, keys)
    plan.run(conn, rows)


@dataclass(frozen=True, slots=True)
class Insert:
    """Rows for one table (all with the same keys), and what a constraint they break
    means to the caller."""

    table: Table
    rows: list[dict[str, Any]]
    conflict: Conflict | None = None  # None: the IntegrityError itself

    def error(self, e: Exception) -> Exception:
        """What `e`, raised by inserting these rows, means to their caller: `conflict`'s
        error for a broken constraint, `ValidationFailed` for a value the database
        cannot store, else `e` itself."""
        if isinstance(e, exc.IntegrityError) and self.conflict is not None:
            translated = self.conflict(e)
        elif unstorable(e):
            translated = unstorable_rows(self.table, self.rows)
        else:
            return e
        translated.__cause__ = e
        return translated


# -- writing one group, on a blocking connection ---------------------------------------


def write_group(conn: Connection, units: Sequence[Sequence[Insert]]) -> list[Outcome]:
    """Insert every unit's rows in one transaction and commit; when a row fails, write
    them again, each unit in its own savepoint, so that only the culprits fail.

    Raises an error that says the database is away: then no unit was committed.
    """
    try:
        with conn.begin():
            for table, rows in _by_table(units):
                _execute_insert(conn, table, rows)
        return [None] * len(units)
    except Exception as e:
        if unavailable(e) is not None:
            raise
    with conn.begin():
        return [_write_alone(conn, unit) for unit in units]


def _by_table(units: Sequence[Sequence[Insert]]) -> Iterator[tuple[Table, list[dict[str, Any]]]]:
    """The rows of all units, one list per table and set of columns, parents first."""
    rows: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for unit in units:
        for item in unit:
            if item.rows:
                rows.setdefault((item.table, tuple(item.rows[0])), []).extend(item.rows)
    for table, _keys in sorted(rows, key=lambda k: _TABLE_ORDER.get(k[0], len(_TABLE_ORDER))):
        yield table, rows[table, _keys]


def _write_alone(conn: Connection, unit: Sequence[Insert]) -> Outcome:
    savepoint = conn.begin_nested()
    for item in unit:
        if not item.rows:
            continue
        try:
            _execute_insert(conn, item.table, item.rows)
        except Exception as e:
            if unavailable(e) is not None:
                raise
            savepoint.rollback()
            return item.error(e)
    savepoint.commit()
    return None


# -- where a group is written ----------------------------------------------------------


class AsyncWriter:
    """Writes groups on a pooled connection of the async engine (PostgreSQL, and SQLite
    in memory): one connection and one transaction a group."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def __call__(self, units: list[list[Insert]]) -> list[Outcome]:
        async with self._engine.connect() as conn:
            return await conn.run_sync(write_group, units)

    async def close(self) -> None:
        """Nothing of its own to close: the engine's pool holds its connections."""


class ThreadedWriter:
    """Writes groups whole in a thread of its own, on a blocking connection of its own
    (SQLite files): a group costs one hand-off from the event loop and back, where
    aiosqlite takes one for every statement, BEGIN and COMMIT included."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread: ThreadPoolExecutor | None = None

    async def __call__(self, units: list[list[Insert]]) -> list[Outcome]:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="chute-group-commit")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._write, units)

    def _write(self, units: list[list[Insert]]) -> list[Outcome]:
        with self._engine.connect() as conn:
            return write_group(conn, units)

    async def close(self) -> None:
        """Close the connection in its own thread, then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._engine.dispose)
            thread.shutdown(wait=False)


class LoopThreadWriter:
    """Writes groups in a thread running an event loop of its own, on an async engine of
    its own (PostgreSQL): there the round trips of a group (the pool's ping, BEGIN, the
    inserts, COMMIT) are taken up as soon as they are answered, where on the service's
    loop each waited for its turn behind the requests being served."""

    def __init__(self, make_engine: Callable[[], AsyncEngine]) -> None:
        self._make_engine = make_engine
        self._engine: AsyncEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    async def __call__(self, units: list[list[Insert]]) -> list[Outcome]:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="chute-group-commit", daemon=True
            )
            self._thread.start()
        done = asyncio.run_coroutine_threadsafe(self._write(units), self._loop)
        return await asyncio.wrap_future(done)

    async def _write(self, units: list[list[Insert]]) -> list[Outcome]:
        if self._engine is None:
            self._engine = self._make_engine()
        async with self._engine.connect() as conn:
            return await conn.run_sync(write_group, units)

    async def close(self) -> None:
        """Close the engine's connections in the thread's loop, then end the thread."""
        loop, thread, engine = self._loop, self._thread, self._engine
        self._loop = self._thread = self._engine = None
        if loop is None or thread is None:
            return
        try:
            if engine is not None:
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(engine.dispose(), loop))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.get_running_loop().run_in_executor(None, thread.join)
            loop.close()


# -- the committer ---------------------------------------------------------------------


@dataclass(slots=True)
class _Waiting:
    inserts: list[Insert]
    done: asyncio.Future[None]
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.rows = sum(len(item.rows) for item in self.inserts)


class GroupCommitter:
    """Commits the inserts handed to it, as many units of work as are waiting in one
    transaction, one transaction at a time."""

    def __init__(self, write: Writer, *, max_rows: int = MAX_GROUP_ROWS) -> None:
        self._write, self._max_rows = write, max_rows
        self._queue: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def commit(self, inserts: list[Insert]) -> None:
        """Commit these inserts whole or not at all; return once they are committed.

        Raises their own constraint's error (their group's other units commit), or the
        error that failed their whole group.
        """
        loop = asyncio.get_running_loop()
        waiting = _Waiting(inserts, loop.create_future())
        self._queue.append(waiting)
        self._ensure_running(loop)
        self._wakeup.set()
        await waiting.done

    async def close(self) -> None:
        """Commit what was handed over, then stop the task (the next commit starts one)."""
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.shield(task)
        finally:
            self._stopping = False

    def _ensure_running(self, loop: asyncio.AbstractEventLoop) -> None:
        task = self._task
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        # First use, or the task ended (closed, or its loop went away): units left over
        # from another loop can never be answered there.
        self._queue = deque(w for w in self._queue if w.done.get_loop() is loop)
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="chute-group-commit")

    async def _run(self) -> None:
        while True:
            while group := self._take():
                await self._commit(group)
            if self._stopping:
                return
            await self._wakeup.wait()
            self._wakeup.clear()

    def _take(self) -> list[_Waiting]:
        group: list[_Waiting] = []
        rows = 0
        while self._queue and (not group or rows + self._queue[0].rows <= self._max_rows):
            waiting = self._queue.popleft()
            if waiting.done.done():  # its caller was cancelled before its group began
                continue
            group.append(waiting)
            rows += waiting.rows
        return group

    async def _commit(self, group: list[_Waiting]) -> None:
        try:
            outcomes = await self._write([waiting.inserts for waiting in group])
        except asyncio.CancelledError:
            closed = "the database was closed while the commit was in progress"
            _answer(group, [ServiceUnavailable(closed) for _ in group])
            raise
        except Exception as e:
            # Each caller raises its own copy: one exception object raised in many tasks
            # at once would collect all their tracebacks.
            outcomes = [_own(e) for _ in group]
        _answer(group, outcomes)


def _answer(group: list[_Waiting], outcomes: list[Outcome]) -> None:
    for waiting, outcome in zip(group, outcomes, strict=True):
        if waiting.done.done():  # cancelled while its group was written
            continue
        if outcome is None:
            waiting.done.set_result(None)
        else:
            waiting.done.set_exception(outcome)


def _own(error: Exception) -> Exception:
    try:
        mine = copy.copy(error)
    except Exception:  # an exception that cannot be copied is shared as it is
        return error
    mine.__cause__ = error.__cause__ if error.__cause__ is not None else error
    return mine
