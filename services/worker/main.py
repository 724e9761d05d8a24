"""Worker entry point for the Dramatiq CLI: ``dramatiq plexzoom.worker.main``."""

from plexzoom.worker.broker import connect_broker, enqueue_conversion
from plexzoom.worker.config import WorkerSettings
from plexzoom.worker.passes import inbox_pass, reconcile_pass
from plexzoom.worker.periodic import Periodic
from plexzoom.worker.process import prepare_decoding_process

settings = WorkerSettings()
prepare_decoding_process(settings.malloc_arenas)  # before Dramatiq starts its threads
broker = connect_broker(settings.redis_url)

from plexzoom.worker import actors  # noqa: E402  (actors bind to the broker set above)


def enqueue(image_id: str) -> None:
    """Queue one image's conversion on this worker's broker."""
    enqueue_conversion(broker, image_id)


reconciling = reconcile_pass(
    actors.storage, enqueue, settings.queued_grace_s, settings.upload_stale_s
)
broker.add_middleware(Periodic("reconciler", reconciling, settings.reconcile_interval_s))
if settings.inbox_scan_interval_s > 0:
    scanning = inbox_pass(actors.storage, enqueue, settings.inbox())
    broker.add_middleware(Periodic("inbox", scanning, settings.inbox_scan_interval_s))

__all__ = ["actors", "broker"]
