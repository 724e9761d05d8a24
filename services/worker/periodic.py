"""Work a worker process does on a clock (reconciling, scanning the inbox), not on messages."""

import logging
import threading
from collections.abc import Callable

import dramatiq
import redis

from plexzoom.core.errors import PlexzoomError

log = logging.getLogger(__name__)


class Periodic(dramatiq.Middleware):
    """A Dramatiq middleware: a thread that runs ``task`` at start, then every interval (after
    a failed pass, at least ``pause_after_error_s`` later: a task that blocks on its own, such as
    a long poll, runs with no interval but must not spin on a dead service)."""

    def __init__(
        self,
        name: str,
        task: Callable[[], None],
        interval_s: float,
        pause_after_error_s: float = 5.0,
    ) -> None:
        self._name, self._task, self._interval = name, task, interval_s
        self._pause = pause_after_error_s
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start once the worker consumes."""
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop after the current pass."""
        self._stop.set()
        self._wake.set()

    def wake(self) -> None:
        """Run the next pass now rather than at the end of the interval."""
        self._wake.set()

    def run_once(self) -> bool:
        """One pass; storage or Redis trouble is logged (False) and a later pass tries again."""
        try:
            self._task()
        except (PlexzoomError, redis.RedisError) as exc:
            log.warning("%s pass failed: %s", self._name, exc)
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self._interval if self.run_once() else max(self._interval, self._pause)
            self._wake.wait(wait)
            self._wake.clear()
