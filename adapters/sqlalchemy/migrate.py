"""Run chute's Alembic migrations from Python, on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from chute.adapters.sqlalchemy.engine import create_engine_for, ensure_sqlite_folder
from sqlalchemy.engine import Connection

# The package-resource form, so that the migrations are found in an installed wheel too.
SCRIPT_LOCATION = "chute.adapters.sqlalchemy:migrations"


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration for chute's migrations, with no alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        # '%' is interpolation syntax in ini values; a password may hold one.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`, in one transaction."""
    await _run(url, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision` (`"base"` removes every table)."""
    await _run(url, lambda cfg: command.downgrade(cfg, revision))


async def _run(url: str, action: Callable[[Config], None]) -> None:
    ensure_sqlite_folder(url)
    engine = create_engine_for(url, command_timeout=None)  # index builds may be long
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_with_connection, url, action)
    finally:
        await engine.dispose()


def _with_connection(conn: Connection, url: str, action: Callable[[Config], None]) -> None:
    cfg = alembic_config(url)
    cfg.attributes["connection"] = conn  # env.py runs on it instead of opening its own
    action(cfg)
