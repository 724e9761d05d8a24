"""Worker entry point for the Dramatiq CLI: ``dramatiq plexzoom.worker.main``."""

# ruff: noqa: E402  (the metrics folder is set before the imports that load prometheus_client)
import os

from dramatiq.middleware.prometheus import DB_PATH

# prometheus_client decides when first imported (plexzoom.core.queue imports it) whether figures
# live in this process or in files of a folder; Dramatiq's Prometheus middleware writes its
# own to DB_PATH, so plexzoom's go there too and one scrape reads both, from every process.
os.environ["PROMETHEUS_MULTIPROC_DIR"] = DB_PATH

import functools
from functools import partial

import dramatiq
import redis

from plexzoom.core.convert import start_spare_child
from plexzoom.core.logs import configure_logging
from plexzoom.core.queue import connect_broker, enqueue_conversion
from plexzoom.core.sqs import SqsQueue
from plexzoom.settings import build_storage
from plexzoom.worker.config import WorkerSettings
from plexzoom.worker.metrics import WorkerPrometheus
from plexzoom.worker.passes import inbox_pass, reconcile_pass, sqs_pass
from plexzoom.worker.periodic import Periodic
from plexzoom.worker.process import prepare_decoding_process
from plexzoom.worker.watcher import FolderWatcher
from plexzoom.worker.webhooks import WebhookSender

settings = WorkerSettings()
configure_logging(settings.log_format)
if settings.scratch_dir is not None:  # conversions make their folders in it
    try:
        settings.scratch_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SystemExit(
            f"plexzoom: PLEXZOOM_SCRATCH_DIR ({settings.scratch_dir}) cannot be made: "
            f"{exc.strerror}"
        ) from exc
prepare_decoding_process(settings.malloc_arenas)  # before Dramatiq starts its threads
broker = connect_broker(settings.redis_url)
# Dramatiq's message metrics; at shutdown it marks the process dead, dropping its live gauges
# (plexzoom's too: they share the folder). Served with plexzoom's on PLEXZOOM_METRICS_PORT.
broker.add_middleware(WorkerPrometheus(serving=settings.metrics_port is not None))

from plexzoom.worker import actors  # actors bind to the broker set above


def enqueue(image_id: str) -> None:
    """Queue one image's conversion on this worker's broker."""
    enqueue_conversion(broker, image_id)


def add_passes() -> None:
    """The work done on a clock rather than on messages: the reconciler, the inbox scanner (and
    the local folder's watcher), the SQS consumer, the webhook sender."""
    reconciling = reconcile_pass(
        actors.storage,
        enqueue,
        settings.queued_grace_s,
        settings.upload_stale_s,
        settings.resumable_upload_ttl_s,
    )
    broker.add_middleware(Periodic("reconciler", reconciling, settings.reconcile_interval_s))
    if settings.inbox_scan_interval_s > 0:
        bucket = functools.cache(partial(build_storage, settings, agent="plexzoom-worker"))
        scanning = inbox_pass(actors.storage, enqueue, settings.inbox(), settings.watches(), bucket)
        scanner = Periodic("inbox", scanning, settings.inbox_scan_interval_s)
        broker.add_middleware(scanner)
        if not settings.uses_s3:  # the local folder: a file that lands starts a scan soon after
            folder = settings.data_dir / settings.inbox_prefix
            broker.add_middleware(FolderWatcher(folder, scanner.wake, settings.inbox_settle_s))
    if settings.sqs_queue_url:
        queue = SqsQueue(settings.sqs_queue_url, wait_s=settings.sqs_wait_s)
        polling = sqs_pass(actors.storage, enqueue, settings.inbox(), queue, settings.s3_region)
        broker.add_middleware(Periodic("sqs", polling, interval_s=0))  # each poll waits itself
    webhooks = settings.webhook_options()
    if webhooks is not None:
        events = redis.Redis.from_url(settings.redis_url or "", health_check_interval=30)
        broker.add_middleware(Webhooks(WebhookSender(events, webhooks)))


class Webhooks(dramatiq.Middleware):
    """Runs the webhook sender (threads and an HTTP client of its own) while this process
    consumes: a slow receiver never holds up a conversion."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start the sender."""
        self.sender.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop it; what it had not delivered stays pending for the next sender."""
        self.sender.stop()


class SpareChild(dramatiq.Middleware):
    """Starts the spare conversion child once this worker process consumes."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start it (in the background: the worker does not wait)."""
        start_spare_child(settings.convert_options())


if settings.runs_passes:
    add_passes()
if settings.worker_role != "maintain":
    broker.add_middleware(SpareChild())

__all__ = ["actors", "broker"]
