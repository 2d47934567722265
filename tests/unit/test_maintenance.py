"""`chute serve`'s purge of settled webhook deliveries: CHUTE_WEBHOOK_RETENTION_SECONDS
reaches the duty, which runs at start and then every `WEBHOOK_PURGE_INTERVAL`."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from chute.application import WebhookPolicy
from chute.entrypoints.bootstrap import build_container
from chute.entrypoints.http import maintenance
from chute.entrypoints.settings import Settings, setting_errors
from dependency_injector import providers
from pydantic import ValidationError


class IdleEngine:
    """An engine with nothing to do for every duty; it keeps the purges it is asked for."""

    webhook_policy = WebhookPolicy()

    def __init__(self, purges_wanted: int) -> None:
        self.purges: list[tuple[timedelta, int]] = []
        self._wanted = purges_wanted
        self.done = asyncio.Event()

    async def rescue_expired_leases(self, limit: int) -> list[Any]:
        return []

    async def sweep_orphans(self, *, grace: timedelta) -> int:
        return 0

    async def run_due_schedules(self) -> None:
        return None

    async def deliver_webhooks(self, render: Any) -> int:
        return 0

    async def purge_webhook_deliveries(self, older_than: timedelta, batch: int = 1000) -> int:
        self.purges.append((older_than, batch))
        if len(self.purges) >= self._wanted:
            self.done.set()
        return 0


async def purges_while_serving(purges_wanted: int) -> list[tuple[timedelta, int]]:
    container = build_container(Settings())
    engine = IdleEngine(purges_wanted)
    container.engine.override(providers.Object(engine))
    async with maintenance.maintaining(container):
        await asyncio.wait_for(engine.done.wait(), 5)
    return engine.purges


@pytest.fixture(autouse=True)
def no_retention_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHUTE_WEBHOOK_RETENTION_SECONDS", raising=False)


async def test_serve_purges_at_start_with_the_retention_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHUTE_WEBHOOK_RETENTION_SECONDS", "129600")
    assert await purges_while_serving(1) == [(timedelta(hours=36), 1000)]


async def test_serve_keeps_a_week_of_deliveries_by_default_and_purges_again_each_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert maintenance.WEBHOOK_PURGE_INTERVAL == 3600  # hourly
    monkeypatch.setattr(maintenance, "WEBHOOK_PURGE_INTERVAL", 0.01)
    purges = await purges_while_serving(3)
    assert purges[:3] == [(timedelta(days=7), 1000)] * 3


@pytest.mark.parametrize("value", ["0", "-5", "a week"])
def test_a_retention_that_is_not_a_positive_number_of_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CHUTE_WEBHOOK_RETENTION_SECONDS", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    (line,) = setting_errors(refused.value)
    assert line.startswith("CHUTE_WEBHOOK_RETENTION_SECONDS: ")
