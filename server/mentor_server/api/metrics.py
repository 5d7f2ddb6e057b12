"""Prometheus metrics of one app instance (its own registry: two apps in one process never collide).

- `mentor_http_requests_total{method, route, status}` and `mentor_http_request_duration_seconds`
  (a histogram) per route *template*, so raw paths cannot blow up the label space;
- `mentor_items_scored_total{preset}` and `mentor_item_errors_total{type}`;
- `mentor_component_score{component}` and `mentor_reward{preset}`: summaries (`_sum`, `_count`)
  whose ratio is the running mean; they are fed one batch at a time (summed per batch, not
  observed item by item, so a 4096-item batch costs a handful of additions);
- `mentor_batch_component_mean{component}`: the means of the latest batch, as gauges;
- `mentor_scoring_batches_in_flight`: batches being scored right now.

Every label takes values from a bounded set (HTTP methods and routes from fixed lists, the
free-form ones capped at 64 values each, the rest `other`), so no stream of requests can
grow the text that `/metrics` renders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mentor_client.protocol import BatchStats, ItemResult

from ..scoring import ItemScore

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


_MAX_LABEL_VALUES = 64
"""Distinct values one free-form label may take (component names, error types); later ones are `other`."""


class LabelCap:
    """A fixed budget of distinct values for one label, so no input can grow the metrics without end."""

    def __init__(self, limit: int = _MAX_LABEL_VALUES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(value)
                return value
        return "other"


M = TypeVar("M", Counter, Gauge)


class _Capped(Generic[M]):
    """A one-label metric whose label values go through a `LabelCap`."""

    def __init__(self, metric: M) -> None:
        self.metric: M = metric
        self._cap = LabelCap()

    def labels(self, value: str) -> M:
        child: M = self.metric.labels(self._cap(value))
        return child


class _RunningMeans(Collector):
    """Per-label sums and counts exposed as a Prometheus summary (mean = rate(_sum)/rate(_count))."""

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self._name = name
        self._doc = documentation
        self._label = label
        self._lock = threading.Lock()
        self._sums: dict[str, tuple[float, int]] = {}
        self._cap = LabelCap()

    def add(self, key: str, total: float, count: int) -> None:
        if count <= 0:
            return
        key = self._cap(key)
        with self._lock:
            old_total, old_count = self._sums.get(key, (0.0, 0))
            self._sums[key] = (old_total + total, old_count + count)

    def collect(self) -> Iterable[Metric]:
        family = SummaryMetricFamily(self._name, self._doc, labels=[self._label])
        with self._lock:
            for key, (total, count) in sorted(self._sums.items()):
                family.add_metric([key], count_value=count, sum_value=total)
        yield family


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mentor_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mentor_http_request_duration_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.items_scored = _Capped(Counter("mentor_items_scored", "Items scored", ["preset"], registry=self.registry))
        self.item_errors = _Capped(
            Counter("mentor_item_errors", "Items that could not be scored", ["type"], registry=self.registry)
        )
        self.batch_means = _Capped(
            Gauge(
                "mentor_batch_component_mean",
                "Component means of the latest batch",
                ["component"],
                registry=self.registry,
            )
        )
        self.batches_in_flight = Gauge(
            "mentor_scoring_batches_in_flight", "Batches being scored now", registry=self.registry
        )
        self.component_scores = _RunningMeans("mentor_component_score", "Component scores (running mean)", "component")
        self.rewards = _RunningMeans("mentor_reward", "Rewards of scored items (running mean)", "preset")
        self.registry.register(self.component_scores)
        self.registry.register(self.rewards)

    def record_batch(self, preset: str, results: Sequence[ItemResult | ItemScore], stats: BatchStats) -> None:
        """Account one scored batch: items, rewards, component scores, and item errors by type."""
        self.items_scored.labels(preset).inc(len(results))
        reward_sum = 0.0
        reward_count = 0
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        errors: dict[str, int] = {}
        # A plain loop without per-value type checks: this runs on the event loop for every batch.
        for result in results:
            if result.error is not None:
                errors[result.error.type] = errors.get(result.error.type, 0) + 1
                continue
            reward_sum += result.reward or 0.0
            reward_count += 1
            for name, value in result.components.items():
                if value is not None:
                    sums[name] = sums.get(name, 0.0) + value
                    counts[name] = counts.get(name, 0) + 1
        for kind, count in errors.items():
            self.item_errors.labels(kind).inc(count)
        self.rewards.add(preset, reward_sum, reward_count)
        for name, total in sums.items():
            self.component_scores.add(name, total, counts[name])
        for name, mean in stats.component_means.items():
            if mean is not None:
                self.batch_means.labels(name).set(mean)


HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods that get their own label; any other (a client can send any token) is `other`."""


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


def render(metrics: ServiceMetrics) -> bytes:
    """The Prometheus text of `metrics` (every label bounded, so its size is too)."""
    return generate_latest(metrics.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request, errors included, by its route template.

    Every label comes from a fixed set: the route *template* (or `unmatched`, which is also
    what a request refused by auth gets), one of the standard methods (or `other`), and the
    status code, so requests with made-up methods or paths cannot grow the metrics.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = method_label(scope.get("method", ""))
            self.metrics.requests.labels(method, template, status_label(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
