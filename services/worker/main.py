"""Worker entry point for the Dramatiq CLI: ``dramatiq plexzoom.worker.main``."""

import logging

from plexzoom.core.libvips import restrict_loaders
from plexzoom.worker.broker import connect_broker
from plexzoom.worker.config import WorkerSettings
from plexzoom.worker.memory import limit_malloc_arenas

limit_malloc_arenas(WorkerSettings().malloc_arenas)  # before Dramatiq starts its threads
restrict_loaders()  # uploads are decoded here: only the allow-listed libvips loaders may run
logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips logs every threadpool at INFO
broker = connect_broker(WorkerSettings().redis_url)

from plexzoom.worker import actors  # noqa: E402  (actors bind to the broker set above)

__all__ = ["actors", "broker"]
