"""The telemetry adapters: Prometheus metrics and OpenTelemetry traces, each optional.

`ChuteTelemetry` is the `Telemetry` port on them: metrics when it has a
`PrometheusMetrics`, spans when it has an `OtelTracing`; the composition root picks
which by CHUTE_METRICS and OTEL_EXPORTER_OTLP_ENDPOINT.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

from chute.adapters.telemetry.otel import OtelTracing
from chute.adapters.telemetry.prometheus import PrometheusMetrics
from chute.application.ports import Telemetry
from chute.domain import Job

_NO_SPAN: AbstractContextManager[Any] = nullcontext()


class ChuteTelemetry(Telemetry):
    """Counts into `metrics` and traces into `tracing`, either of which may be None."""

    def __init__(
        self, metrics: PrometheusMetrics | None = None, tracing: OtelTracing | None = None
    ) -> None:
        self.metrics, self.tracing = metrics, tracing

    def jobs_created(self, queue: str, source_type: str, count: int) -> None:
        if self.metrics is not None:
            self.metrics.jobs_created.labels(queue, source_type).inc(count)

    def job_claimed(self, queue: str, waited_seconds: float | None) -> None:
        if self.metrics is not None and waited_seconds is not None:
            self.metrics.job_wait.labels(queue).observe(waited_seconds)

    def attempt_ended(self, queue: str, ran_seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.job_run.labels(queue).observe(ran_seconds)

    def job_finished(self, queue: str, status: str) -> None:
        if self.metrics is not None:
            self.metrics.jobs_finished.labels(queue, status).inc()

    def webhook_delivered(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(result).inc()

    def span(self, name: str) -> AbstractContextManager[None]:
        if self.tracing is None:
            return _NO_SPAN
        return self.tracing.span(name)  # type: ignore[no-any-return]

    def trace_context(self) -> str | None:
        return self.tracing.trace_context() if self.tracing is not None else None

    def job_span(self, job: Job) -> AbstractContextManager[None]:
        if self.tracing is None:
            return _NO_SPAN
        return self.tracing.job_span(job)  # type: ignore[return-value]

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP request answered (the HTTP adapter's call, not the engine's)."""
        if self.metrics is not None:
            self.metrics.http_request(method, route, status, seconds)


__all__ = ["ChuteTelemetry", "OtelTracing", "PrometheusMetrics"]
