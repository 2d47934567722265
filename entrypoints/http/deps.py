"""The dependencies that routes share, as `Annotated` aliases: a route names `engine: Engine`."""

from __future__ import annotations

from typing import Annotated

from chute.application import OrchestrationEngine
from chute.entrypoints.bootstrap import engine_of
from fastapi import Depends, Request


async def request_engine(request: Request) -> OrchestrationEngine:
    """The engine of the app serving `request`: `Depends(request_engine)` in a route.

    The same object as `Depends(Provide[Container.engine])` under `@inject`, from the
    container the app keeps (so overrides of its providers apply), for a fraction of
    the cost: FastAPI runs a `Provide` marker (a plain callable) in its thread pool,
    and `@inject` then awaits the async provider in a task of its own, which together
    cost more than everything else a create does in the web layer.
    """
    return await engine_of(request.app.state.container)


# Not `Depends(Provide[Container.engine])` under `@inject`: see `request_engine`.
Engine = Annotated[OrchestrationEngine, Depends(request_engine)]
