"""Worker entry point for the Dramatiq CLI: ``dramatiq plexzoom.worker.main``."""

from plexzoom.worker.broker import connect_broker, enqueue_conversion
from plexzoom.worker.config import WorkerSettings
from plexzoom.worker.process import prepare_decoding_process
from plexzoom.worker.reconciler import Reconciler

settings = WorkerSettings()
prepare_decoding_process(settings.malloc_arenas)  # before Dramatiq starts its threads
broker = connect_broker(settings.redis_url)

from plexzoom.worker import actors  # noqa: E402  (actors bind to the broker set above)

broker.add_middleware(
    Reconciler(
        actors.storage,
        lambda image_id: enqueue_conversion(broker, image_id),
        settings.reconcile_interval_s,
        settings.queued_grace_s,
        settings.upload_stale_s,
    )
)

__all__ = ["actors", "broker"]
