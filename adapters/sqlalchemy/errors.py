"""The one place driver errors are read: the database is away, or a value of the
statement is one it cannot store (the input's fault), or neither (the error itself)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from chute.application.errors import FieldError, ServiceUnavailable, ValidationFailed
from chute.domain.validation import storable
from sqlalchemy import BigInteger, Integer, String, Table, exc

# SQLSTATEs that say "not now" rather than "not so": class 08 (connection exception),
# 57P01-57P05 (shutting down, starting up, crashed...), 53300 (too many connections).
UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")
# SQLSTATEs that say "not this value": class 22 (data exception: NUL in text, a value too
# long for its column, an escape jsonb refuses...) and 54000 (an index row too large).
UNSTORABLE_SQLSTATES = ("22", "54000")
UNSTORABLE_VALUE = "the database cannot store this value"
INT64 = range(-(2**63), 2**63)


def unavailable(e: BaseException) -> ServiceUnavailable | None:
    """`ServiceUnavailable` when `e` says the database cannot be reached now, else None."""
    if isinstance(e, exc.OperationalError | exc.InterfaceError):
        orig = e.orig if isinstance(e, exc.DBAPIError) else e
        return ServiceUnavailable(f"the database cannot be reached: {type(orig).__name__}")
    if isinstance(e, exc.DBAPIError):
        if e.connection_invalidated:
            return ServiceUnavailable("the database connection was lost")
        # asyncpg's server errors all arrive as the generic DBAPIError: read their state.
        # Without this, "the database system is starting up" (57P03) was a 500.
        state = _sqlstate(e)
        if state.startswith(UNAVAILABLE_SQLSTATES):
            return ServiceUnavailable(f"the database cannot serve now: SQLSTATE {state}")
    if isinstance(e, exc.TimeoutError | OSError):  # OSError covers TimeoutError and refusals
        return ServiceUnavailable(f"the database cannot be reached: {type(e).__name__}")
    return None


def unstorable(e: BaseException) -> bool:
    """Whether `e` says that a value of the statement cannot be stored: text the driver
    cannot encode (a surrogate), a number too large for its column, or the database's
    own data exception (NUL on PostgreSQL, a string longer than its column)."""
    if isinstance(e, exc.DataError):
        return True
    cause: BaseException | None = e
    if isinstance(e, exc.DBAPIError):
        if _sqlstate(e).startswith(UNSTORABLE_SQLSTATES):
            return True
        cause = e.orig
    # The driver's own error (asyncpg's "invalid input for query argument") or none: what
    # it could not encode is its cause, or the error itself (sqlite3 raises it as it is).
    while cause is not None:
        if isinstance(cause, UnicodeError | OverflowError):
            return True
        cause = cause.__cause__
    return False


def _sqlstate(e: exc.DBAPIError) -> str:
    state = getattr(e.orig, "sqlstate", None)
    return state if isinstance(state, str) else ""


def unstorable_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> ValidationFailed:
    """The validation error of rows the database refused as values: located at the first
    column found to hold text it cannot store, a number too large, or a string too long
    (the columns are named as the fields they come from)."""
    column = next((name for row in rows for name in _culprits(table, row)), None)
    return ValidationFailed([FieldError(() if column is None else (column,), UNSTORABLE_VALUE)])


def _culprits(table: Table, row: Mapping[str, Any]) -> Iterator[str]:
    for name, value in row.items():
        column = table.c.get(name)
        if column is None or value is None:
            continue
        if _holds_unstorable_text(value):
            yield name
        elif isinstance(column.type, Integer | BigInteger) and isinstance(value, int):
            if value not in INT64:
                yield name
        elif isinstance(column.type, String) and isinstance(value, str):
            if column.type.length is not None and len(value) > column.type.length:
                yield name


def _holds_unstorable_text(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not storable(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def translate(e: Exception) -> Exception:
    """What `e` means to the application: `ValidationFailed` for a value the database
    cannot store, `ServiceUnavailable` for a database away, else `e` itself."""
    if unstorable(e):
        return ValidationFailed([FieldError((), UNSTORABLE_VALUE)])
    return unavailable(e) or e


@contextmanager
def database_errors() -> Iterator[None]:
    """Raise what a driver's error means to the application (`translate`)."""
    try:
        yield
    except Exception as e:
        translated = translate(e)
        if translated is e:
            raise
        raise translated from e
