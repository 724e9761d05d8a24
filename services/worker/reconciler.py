"""Runs the reconciler in every worker process: at start, then every few seconds."""

import logging
import threading
from collections.abc import Callable

import dramatiq
import redis

from plexzoom.core.errors import PlexzoomError
from plexzoom.core.reconcile import reconcile
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)


class Reconciler(dramatiq.Middleware):
    """A Dramatiq middleware: a thread that runs plexzoom.core.reconcile on an interval."""

    def __init__(
        self,
        storage: Callable[[], Storage],
        enqueue: Callable[[str], None],
        interval_s: float,
        queued_grace_s: float,
        upload_stale_s: float = 600,
    ) -> None:
        self._storage, self._enqueue = storage, enqueue
        self._interval, self._grace = interval_s, queued_grace_s
        self._upload_stale = upload_stale_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconciler", daemon=True)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start the passes once the worker consumes."""
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop after the current pass."""
        self._stop.set()

    def run_once(self) -> None:
        """One pass; storage or Redis trouble is logged and the next pass tries again."""
        try:
            done = reconcile(self._storage(), self._enqueue, self._grace, self._upload_stale)
        except (PlexzoomError, redis.RedisError) as exc:
            log.warning("reconciler pass failed: %s", exc)
            return
        for image_id in done.requeued:
            log.info("image %s queued again (its job was lost or stalled)", image_id)
        for prefix in done.removed:
            log.info("removed %s (named by no manifest)", prefix)

    def _run(self) -> None:
        self.run_once()
        while not self._stop.wait(self._interval):
            self.run_once()
