"""`chute migrate`: apply the database migrations (a deployment step on PostgreSQL)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from alembic.runtime.migration import MigrationContext
from chute.adapters.sqlalchemy import create_engine_for, upgrade
from chute.entrypoints.settings import Settings


def add_parser(commands: Any) -> None:
    commands.add_parser("migrate", help="apply the database migrations to CHUTE_DATABASE_URL")


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply every migration to CHUTE_DATABASE_URL and print the revision it is at."""
    revision = asyncio.run(_migrate(settings.database_url))
    print(revision)
    return 0


async def _migrate(url: str) -> str:
    await upgrade(url)
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            revision = await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
    return str(revision)
