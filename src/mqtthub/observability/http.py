"""HTTP request metrics: an ASGI middleware counting requests by route template, method and status.

The label is the template of the route that matched (``/api/v1/devices/{device_id}``), read
from the ``route`` Starlette puts in the request scope, never the raw path; requests that
matched no route share the template ``unmatched``. Methods outside the standard set count as
``OTHER``. So the number of series is bounded by the routes the hub serves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mqtthub.observability.histogram import SECONDS_BUCKETS, Histogram

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class HttpMetrics:
    """Counts and latency histograms of HTTP requests, in plain integers until scraped."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        """Requests by (method, route template, status code)."""
        self.latency: dict[tuple[str, str], Histogram] = {}
        """Seconds from request to the end of the response, by (method, route template)."""
        self.in_progress = 0

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        key = (method, route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.latency.get((method, route))
        if histogram is None:
            histogram = self.latency[(method, route)] = Histogram(SECONDS_BUCKETS)
        histogram.observe(seconds)

    def families(self) -> Iterator[Metric]:
        """The HTTP metric families (see the README's "Monitoring")."""
        requests = CounterMetricFamily(
            "mqtthub_http_requests",
            "HTTP requests, by method, route template and status.",
            labels=["method", "route", "status"],
        )
        for labels, count in sorted(self.requests.items()):
            requests.add_metric(list(labels), count)
        yield requests
        latency = HistogramMetricFamily(
            "mqtthub_http_request_duration_seconds",
            "Time from an HTTP request to the end of its response, by method and route template.",
            labels=["method", "route"],
        )
        for (method, route), histogram in sorted(self.latency.items()):
            latency.add_metric([method, route], histogram.buckets(), histogram.sum)
        yield latency
        yield GaugeMetricFamily("mqtthub_http_requests_in_progress", "HTTP requests being served.", self.in_progress)


class HttpMetricsMiddleware:
    """Records every HTTP request in an :class:`HttpMetrics` (WebSocket and lifespan scopes pass through)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the application raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        metrics = self.metrics
        metrics.in_progress += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics.in_progress -= 1
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            metrics.record(method, route, status, time.perf_counter() - started)
