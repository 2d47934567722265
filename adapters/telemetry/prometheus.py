"""chute's Prometheus metrics, in a registry of their own.

Each `PrometheusMetrics` holds its own `CollectorRegistry` rather than the process-wide
default one, so that several apps in one process (tests, a library user's service)
count apart and never clash over a metric's name. The live counts of jobs
(`chute_jobs`) are read from the database at scrape time by the caller and handed to
`render`: what the database says, not what one process saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what every Prometheus server reads

LIVE_STATUSES = ("pending", "scheduled", "running", "cancelling")
"""The statuses `chute_jobs` counts: those of jobs not finished yet."""

# Waits and runs of content pipelines: from well under a second to hours.
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""HTTP methods labelled as they are; any other a client sends is `OTHER`, so that
clients cannot make a series per made-up method."""

LiveCounts = Mapping[str, Mapping[str, int]]
"""Per queue, the number of live jobs in each of `LIVE_STATUSES`."""


class PrometheusMetrics:
    """The counters and histograms of one chute app or worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs_created = Counter(
            "chute_jobs_created", "Jobs created.", ["queue", "source_type"], registry=r
        )
        self.jobs_finished = Counter(
            "chute_jobs_finished",
            "Jobs that reached a final status (completed, failed, cancelled).",
            ["queue", "status"],
            registry=r,
        )
        self.job_wait = Histogram(
            "chute_job_wait_seconds",
            "From a job's creation to its first claim.",
            ["queue"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.job_run = Histogram(
            "chute_job_run_seconds",
            "From a claim to the end of that attempt (completed, failed, retried, "
            "released, cancelled, lease expired).",
            ["queue"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "chute_http_requests",
            "HTTP requests answered, by route template.",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "chute_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "chute_webhook_deliveries",
            "Webhook deliveries, by result.",
            ["result"],
            registry=r,
        )
        # The labelled children of each (method, route, status) seen: `labels()` costs
        # more than the increment itself, and requests are the hot path.
        self._requests: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one answered request."""
        label = method if method in METHODS else "OTHER"
        key = (label, route, status)
        children = self._requests.get(key)
        if children is None:
            children = (
                self.http_requests.labels(label, route, str(status)),
                self.http_duration.labels(label, route),
            )
            self._requests[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self, live: LiveCounts | None = None) -> bytes:
        """The text exposition of every metric, with `chute_jobs` from `live` when given."""
        text = generate_latest(self.registry)
        if live is not None:
            extra = CollectorRegistry(auto_describe=False)
            extra.register(_LiveJobs(live))
            text += generate_latest(extra)
        return text


class _LiveJobs(Collector):
    """`chute_jobs{queue,status}`: the live jobs of each queue, as counted at scrape time."""

    def __init__(self, live: LiveCounts) -> None:
        self.live = live

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "chute_jobs", "Jobs not finished, by queue and status.", labels=["queue", "status"]
        )
        for queue, counts in sorted(self.live.items()):
            for status in LIVE_STATUSES:
                family.add_metric([queue, status], counts.get(status, 0))
        yield family
