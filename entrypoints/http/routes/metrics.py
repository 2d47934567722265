"""`GET /metrics`: chute's metrics in Prometheus's text format.

Counters and histograms come from the app's own registry; `chute_jobs` is counted from
the database at each scrape (`list_queues`), so that every process behind a load
balancer answers the same live counts. Behind the API keys like every route but the
health checks and the description: queue names and rates are the operator's business.
"""

from __future__ import annotations

from chute.adapters.telemetry import PrometheusMetrics
from chute.adapters.telemetry.prometheus import CONTENT_TYPE, LiveCounts
from chute.application import QueueView
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.openapi import problem_responses
from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

router = APIRouter(tags=["metrics"])

EXAMPLE = 'chute_jobs{queue="default",status="pending"} 3.0\n'


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics, in Prometheus's text exposition format 0.0.4.",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": EXAMPLE}},
        },
        **problem_responses(
            404, 503, descriptions={404: "Metrics are off: CHUTE_METRICS=false (`not-found`)"}
        ),
    },
)
async def metrics(request: Request, engine: Engine) -> Response:
    """Every metric of this process, and the live jobs of each queue from the database."""
    registry: PrometheusMetrics | None = request.app.state.container.metrics()
    if registry is None:
        raise HTTPException(404)
    live = live_counts(await engine.list_queues())
    return Response(registry.render(live), media_type=CONTENT_TYPE)


def live_counts(queues: list[QueueView]) -> LiveCounts:
    """`chute_jobs`'s values: the unfinished jobs of each queue, by status."""
    return {
        view.name: {
            "pending": view.counts.pending,
            "scheduled": view.counts.scheduled,
            "running": view.counts.running,
            "cancelling": view.counts.cancelling,
        }
        for view in queues
    }
