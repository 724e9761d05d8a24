"""The worker's Prometheus metrics on PLEXZOOM_METRICS_PORT: Dramatiq's own (messages, errors,
retries, rejects, in progress, durations), plexzoom's (plexzoom.core.job_metrics) and the queue's
depth, served by one process Dramatiq forks beside its worker processes.

Each worker process writes its figures to files in Dramatiq's Prometheus folder, which
plexzoom.worker.main makes PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported; the
serving process reads every process's files at each scrape.
"""

import os
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis
from dramatiq.middleware.prometheus import DB_PATH, Prometheus

from plexzoom.core.metrics import MULTIPROC_ENV, exposition, process_exited
from plexzoom.core.queue import QueueDepth
from plexzoom.worker.config import WorkerSettings


class WorkerPrometheus(Prometheus):
    """Dramatiq's Prometheus middleware with plexzoom's exposition server in place of its own
    (which would listen on every interface, port 9191), and none when ``serving`` is False."""

    def __init__(self, serving: bool) -> None:
        super().__init__()
        self.serving = serving

    @property
    def forks(self) -> list[Callable[[], int]]:
        """The processes Dramatiq forks: serve_metrics, when serving."""
        return [serve_metrics] if self.serving else []


def serve_metrics() -> int:
    """Serve GET /metrics on PLEXZOOM_METRICS_HOST:PLEXZOOM_METRICS_PORT until stopped (Dramatiq
    calls this in a process of its own, without arguments)."""
    os.environ[MULTIPROC_ENV] = DB_PATH  # the folder the worker processes write
    settings = WorkerSettings()
    if settings.metrics_port is None:
        return 0
    client = redis.Redis.from_url(settings.redis_url or "", health_check_interval=30)
    address = (settings.metrics_host, settings.metrics_port)
    try:
        ThreadingHTTPServer(address, metrics_handler(QueueDepth(client))).serve_forever()
    finally:
        process_exited()  # importing plexzoom's metrics gave this process a live gauge too
    return 0


def metrics_handler(depth: QueueDepth) -> type[BaseHTTPRequestHandler]:
    """A request handler answering GET /metrics (every process's figures and the queue's
    depth, read now) and 404 to anything else."""

    class MetricsHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.partition("?")[0] != "/metrics":
                self.send_error(404)
                return
            body, content_type = exposition(lambda registry: registry.register(depth))
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not logged (one every few seconds says nothing)."""

    return MetricsHandler
