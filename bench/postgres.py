"""The benchmark's PostgreSQL: the tests' throw-away server (tests/pg.py), made durable.

The tests run their server with fsync, full-page writes and synchronous commit off;
a benchmark of a job store must pay for durable commits as a deployment does, so
those are turned back on (PostgreSQL's defaults). `BENCH_PG_FAST=1` keeps the
tests' settings. `CHUTE_TEST_POSTGRES_URL` points the run at an existing server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from tests import pg

DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


@contextmanager
def server() -> Iterator[str]:
    """The URL (postgresql+asyncpg, database `postgres`) of a server for this run."""
    saved = dict(pg.SERVER_OPTIONS)
    if os.environ.get("BENCH_PG_FAST") != "1":
        pg.SERVER_OPTIONS.update(DURABLE)
    try:
        with pg.postgres_server() as url:
            yield url
    finally:
        pg.SERVER_OPTIONS.clear()
        pg.SERVER_OPTIONS.update(saved)


async def fresh_database(server_url: str, name: str) -> str:
    """An empty database `name` on the server (dropped first if a run left it behind)."""
    await pg.drop_database(server_url, name)
    return await pg.create_database(server_url, name)


def dsn(url: str) -> str:
    """A libpq/asyncpg DSN (postgresql://...) for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
