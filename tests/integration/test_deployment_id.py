"""Each database keeps an id from its migrations, for life: the id its storage's ownership
marker names (see `test_storage_ownership.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

import pytest
from chute.adapters.sqlalchemy import SqlDatabase, create_engine_for, upgrade
from chute.application import ServiceUnavailable
from chute.application.ports import UnitOfWorkFactory
from sqlalchemy.engine import make_url

from tests.factories import sqlite_url
from tests.pg import create_database, drop_database


async def test_a_database_keeps_one_deployment_id(database: UnitOfWorkFactory) -> None:
    async with database(read_only=True) as uow:
        first = await uow.deployment_id()
    async with database() as uow:
        assert await uow.deployment_id() == first
    assert isinstance(first, UUID)


async def deployment_id_of(url: str) -> UUID:
    database = SqlDatabase(create_engine_for(url))
    try:
        async with database(read_only=True) as uow:
            return await uow.deployment_id()
    finally:
        await database.dispose()


async def test_each_migrated_database_gets_an_id_of_its_own(tmp_path: Path) -> None:
    urls = [sqlite_url(tmp_path / "a.db"), sqlite_url(tmp_path / "b.db")]
    for url in urls:
        await upgrade(url)
    first, second = [await deployment_id_of(url) for url in urls]
    assert first != second
    await upgrade(urls[0])  # at head already: the id stays
    assert await deployment_id_of(urls[0]) == first


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a database with no table at all."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "empty.db")
        return
    server: str = request.getfixturevalue("postgres_server_url")
    url = await create_database(server)
    yield url
    await drop_database(server, str(make_url(url).database))


async def test_a_database_not_migrated_says_to_migrate(empty_url: str) -> None:
    with pytest.raises(ServiceUnavailable, match="chute migrate"):
        await deployment_id_of(empty_url)
