"""Prometheus metrics of the web services, and the text every /metrics answers.

A service that runs several processes (uvicorn ``--workers``, Dramatiq's processes) keeps its
metrics in files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode):
the launcher (plexzoom.serve) sets it, with a fresh folder, before any process imports
prometheus_client, and any process reads every process's figures from there. Without it (one
process, tests) the figures live in this process's default registry.

Label values are bounded: route templates, never paths; status codes; outcomes.
"""

import os
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
ASGIApp = Any

HTTP_REQUESTS = Counter(
    "plexzoom_http_requests_total",
    "HTTP requests answered, by service, route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "plexzoom_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by service and route template.",
    ["service", "route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
)
UPLOADS_IN_FLIGHT = Gauge(
    "plexzoom_uploads_in_flight",
    "Uploads whose bytes are arriving now.",
    multiprocess_mode="livesum",
)


def registry() -> CollectorRegistry:
    """The registry a /metrics answer reads: every process's files in multiprocess mode."""
    if not os.environ.get(MULTIPROC_ENV):
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def exposition(extra: Callable[[CollectorRegistry], None] | None = None) -> tuple[bytes, str]:
    """(body, content type) of a /metrics answer; ``extra`` adds collectors read at scrape time
    (a queue's depth) to a registry of their own."""
    body = generate_latest(registry())
    if extra is not None:
        own = CollectorRegistry()
        extra(own)
        body += generate_latest(own)
    return body, CONTENT_TYPE_LATEST


def process_exited() -> None:
    """Drop this process's live gauges (multiprocess mode), at its orderly end."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class RequestMetrics:
    """ASGI middleware: counts each HTTP request and times it by route template.

    ``route_of(scope)`` names the template once the app has handled the request (FastAPI puts
    its route in the scope); label children are cached (``labels()`` takes a lock and a
    dict lookup per call, which the tile path cannot spare).
    """

    def __init__(self, app: ASGIApp, service: str, route_of: Callable[[dict[str, Any]], str]):
        self.app, self.service, self.route_of = app, service, route_of
        self._counts: dict[tuple[str, str, int], Any] = {}
        self._times: dict[str, Any] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await answered(self.app, scope, receive, send, self.observe)

    def observe(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        """Count one answered request (status 0: the client left before an answer)."""
        route = self.route_of(scope)
        key = (route, scope["method"], status)
        count = self._counts.get(key)
        if count is None:
            count = HTTP_REQUESTS.labels(self.service, route, scope["method"], str(status))
            self._counts[key] = count
        timer = self._times.get(route)
        if timer is None:
            timer = self._times[route] = HTTP_SECONDS.labels(self.service, route)
        count.inc()
        timer.observe(seconds)


async def answered(
    app: ASGIApp,
    scope: dict[str, Any],
    receive: Any,
    send: Any,
    then: Callable[[dict[str, Any], int, float], None],
) -> None:
    """Run ``app`` on an HTTP request, then ``then(scope, status, seconds)`` whatever happened
    (status 0: no answer started; the client left). The one way request metrics and access
    lines learn how a request ended."""
    started, status = time.perf_counter(), 0

    async def record_status(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, record_status)
    finally:
        then(scope, status, time.perf_counter() - started)


def fastapi_route(scope: dict[str, Any]) -> str:
    """The template of the route FastAPI matched ("/v1/images/{image_id}"), or "unmatched"."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    path = getattr(route, "path", "")
    return path if isinstance(path, str) and path else "/"  # the viewer, mounted at the root
