"""The procrastinate side of the `workers` benchmark: an app with one task that does nothing.

    BENCH_PROCRASTINATE_DSN=postgresql://... \
        python -m procrastinate --app bench.procrastinate_app.app worker --concurrency 4

The connection pool opens when the app does (not at import).
"""

from __future__ import annotations

import os

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", "")))


@app.task(name="noop")
async def noop(n: int) -> None:
    """Do nothing, as `bench.processors.noop` does for chute."""
