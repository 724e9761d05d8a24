"""Starting one service alone: ``python -m plexzoom.api`` / ``plexzoom.tiles`` /
``plexzoom.worker`` (or the ``plexzoom-api`` ... commands).

Each reads its own PLEXZOOM_* settings, prepares the metrics folder its processes share
(prometheus_client's multiprocess mode), then hands over to uvicorn or Dramatiq.
"""

import contextlib
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from wsgiref.simple_server import WSGIServer

from pydantic import Field

from plexzoom.core.logs import configure_logging, say, uvicorn_log_config
from plexzoom.settings import CommonSettings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # before prometheus_client is imported anywhere
DRAMATIQ_PROM_DB = "dramatiq_prom_db"  # Dramatiq's Prometheus middleware writes there too
log = logging.getLogger(__name__)


class ServeSettings(CommonSettings):
    """How one service is served: PLEXZOOM_HOST, PLEXZOOM_PORT, PLEXZOOM_PROCESSES, ..."""

    host: str = "127.0.0.1"
    port: int | None = None  # None: the service's own default (api 8000, tiles 8001)
    processes: int = Field(default=1, ge=1, le=256)
    threads: int = Field(default=1, ge=1, le=64)  # the worker's threads per process
    # /metrics on a port of its own, without a key (for a scraper inside the cluster); the
    # worker serves its metrics only there.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_host: str | None = None  # None: the service's host
    # The worker's role (plexzoom.worker.config): "maintain" consumes no queue, in one process.
    worker_role: Literal["all", "convert", "maintain"] = "all"
    # How long a stopping worker lets its running conversions finish before it kills them
    # (Dramatiq's --worker-shutdown-timeout; its default is 600 s). Kubernetes' termination
    # grace period must be at least as long.
    worker_shutdown_timeout_s: float = Field(default=600, gt=0)


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name or an interface we cannot prove to be loopback


def access_notice(settings: ServeSettings) -> tuple[bool, str]:
    """(may start, what to say): without API keys the API is only served on loopback."""
    keys = len(settings.api_key_list)
    if keys:
        return True, f"plexzoom: API keys required on /v1 ({keys} configured)"
    if is_loopback(settings.host):
        return True, (
            "plexzoom: no API keys set (PLEXZOOM_API_KEYS): the API is open, to this machine only"
        )
    return False, (
        f"plexzoom: refusing to listen on {settings.host} without API keys: anyone who can "
        "reach it could read and delete every image. Set PLEXZOOM_API_KEYS (comma-separated), "
        "or keep PLEXZOOM_HOST=127.0.0.1."
    )


def prepare_metrics_dir() -> Path:
    """The folder this service's processes keep their metrics in, empty at start.

    PROMETHEUS_MULTIPROC_DIR as given (emptied of an earlier run's files), else a new folder
    under the system's temporary folder. Dramatiq's middleware is pointed at the same one.
    """
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="plexzoom-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    _empty(folder)
    os.environ[MULTIPROC_ENV] = os.environ[DRAMATIQ_PROM_DB] = str(folder)
    return folder


@contextlib.contextmanager
def metrics_dir() -> Iterator[Path]:
    """prepare_metrics_dir() for the life of a supervising process; at its end the folder is
    emptied (one it was given) or removed (one it made)."""
    given = bool(os.environ.get(MULTIPROC_ENV))
    folder = prepare_metrics_dir()
    try:
        yield folder
    finally:
        if given:
            _empty(folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _empty(folder: Path) -> None:
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)


def serve_metrics_port(settings: ServeSettings, host: str) -> WSGIServer | None:
    """Serve /metrics on PLEXZOOM_METRICS_PORT from this (supervising) process, if it is set."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    from plexzoom.core.metrics import registry

    server, _thread = start_http_server(
        settings.metrics_port, settings.metrics_host or host, registry=registry()
    )
    where = f"http://{settings.metrics_host or host}:{settings.metrics_port}/metrics"
    say(f"plexzoom: metrics on {where}", log_format=settings.log_format)
    return server


def serve_web(factory: str, default_port: int) -> int:
    """Run a web service (uvicorn) with its settings; returns when it stops."""
    settings = ServeSettings()
    may_start, notice = access_notice(settings)
    say(notice, error=not may_start, log_format=settings.log_format)
    if not may_start:
        return 2
    import uvicorn

    with metrics_dir():
        server = serve_metrics_port(settings, settings.host)
        try:
            uvicorn.run(
                factory,
                factory=True,
                host=settings.host,
                port=settings.port or default_port,
                workers=settings.processes,
                access_log=False,
                timeout_graceful_shutdown=5,
                log_config=uvicorn_log_config(settings.log_format),
            )
        finally:
            if server is not None:
                server.shutdown()
    return 0


MAINTENANCE_QUEUE = "plexzoom-maintenance"  # no actor: a worker on it consumes nothing


def worker_command(processes: int, threads: int, queue: str | None = None) -> list[str]:
    """The Dramatiq command line of a worker (``queue``: the conversions' unless named)."""
    # Imported here: prometheus_client (which plexzoom.core.queue loads) must first be imported
    # after the metrics folder is set, and Dramatiq's worker processes are forks of this one.
    from plexzoom.core.queue import QUEUE

    return [
        sys.executable,
        "-m",
        "dramatiq",
        "plexzoom.worker.main",
        "--queues",
        queue or QUEUE,
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]


def worker_arguments(settings: ServeSettings) -> list[str]:
    """Dramatiq's command-line arguments for a worker with these settings."""
    if settings.worker_role == "maintain":  # the passes, once: one process, no queue
        arguments = worker_command(1, 1, MAINTENANCE_QUEUE)[3:]
    else:
        arguments = worker_command(settings.processes, settings.threads)[3:]
    shutdown_ms = int(settings.worker_shutdown_timeout_s * 1000)
    return [*arguments, "--worker-shutdown-timeout", str(shutdown_ms)]


def serve_worker() -> int:
    """Run the worker: Dramatiq's command, in this process (its worker processes are forks of
    it, so a JSON log set up here is theirs too)."""
    settings = ServeSettings()
    prepare_metrics_dir()  # left behind when the worker stops (it ends in Dramatiq's hands)
    # Dramatiq's idle consumer backs off up to this many ms between polls (its default 1000
    # adds half a second, on average, between an upload and the start of its conversion).
    os.environ.setdefault("dramatiq_worker_timeout", "100")
    if settings.log_format == "json":
        configure_logging("json")
        logging.getLogger().setLevel(logging.INFO)  # what Dramatiq's own set-up would log
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    arguments = worker_arguments(settings)
    parsed = make_argument_parser().parse_args(arguments)  # type: ignore[no-untyped-call]
    return int(dramatiq_main(parsed) or 0)  # type: ignore[no-untyped-call]
