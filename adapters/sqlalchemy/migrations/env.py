"""Alembic's environment for chute: runs on a given connection, or opens its own.

`chute.adapters.sqlalchemy.migrate` passes a connection already in a transaction
through `config.attributes["connection"]`; the `alembic` command line passes only a
URL (`sqlalchemy.url`), and then an async engine is made here.
"""

from __future__ import annotations

import asyncio
import warnings

from alembic import context
from chute.adapters.sqlalchemy.engine import create_engine_for
from chute.adapters.sqlalchemy.tables import metadata
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning

target_metadata = metadata
_CONTENT_FOLDER_NOT_REFLECTED = ".*expression-based index '?ix_jobs_content_folder"


def run_migrations_offline() -> None:
    """Write the SQL to standard output instead of running it."""
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite alters a table only by copying it: batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with warnings.catch_warnings(), context.begin_transaction():
        # A copy of a table on SQLite reflects it, and the tables its keys name; the
        # expression index on `jobs` cannot be reflected, and SQLAlchemy says so on
        # stderr, among the server's JSON lines. tables.py's index is checked against
        # the migrated one by tests/integration/test_migrations.py.
        warnings.filterwarnings("ignore", _CONTENT_FOLDER_NOT_REFLECTED, SAWarning)
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_engine_for(url, command_timeout=None)  # index builds may be long
    try:
        async with engine.begin() as conn:
            await conn.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    asyncio.run(run_async_migrations(url))


def main() -> None:
    if context.is_offline_mode():
        run_migrations_offline()
    else:
        run_migrations_online()


# Alembic runs this file with its context installed; a plain import (a tool walking
# every module of the package) must do nothing.
if hasattr(context, "config"):
    main()
