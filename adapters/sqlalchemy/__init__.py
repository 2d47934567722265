"""The storage ports on async SQLAlchemy 2: SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from chute.adapters.sqlalchemy.engine import create_engine_for
from chute.adapters.sqlalchemy.migrate import downgrade, upgrade
from chute.adapters.sqlalchemy.signal import PostgresChangeSignal
from chute.adapters.sqlalchemy.uow import SqlDatabase, SqlUnitOfWork

__all__ = [
    "PostgresChangeSignal",
    "SqlDatabase",
    "SqlUnitOfWork",
    "create_engine_for",
    "downgrade",
    "upgrade",
]
