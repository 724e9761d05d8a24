"""The local inbox folder watched by the file system (inotify, through watchfiles): a file that
lands there starts a scan once it has had time to settle, instead of at the next interval."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import dramatiq
import watchfiles

log = logging.getLogger(__name__)


class FolderWatcher(dramatiq.Middleware):
    """A Dramatiq middleware: a thread that calls ``wake`` ``settle_s`` after each change."""

    def __init__(self, folder: Path, wake: Callable[[], None], settle_s: float) -> None:
        self._folder, self._wake, self._settle = folder, wake, settle_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inbox-watcher", daemon=True)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Start watching once the worker consumes."""
        self._folder.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop watching."""
        self._stop.set()

    def _run(self) -> None:
        watching = watchfiles.watch(
            self._folder, stop_event=self._stop, yield_on_timeout=True, rust_timeout=1000
        )
        announced = False
        try:
            for changes in watching:
                if not changes:  # a quiet second: the watch is surely in place
                    if not announced:
                        log.info("watching the inbox folder for new files")
                        announced = True
                    continue
                # A file is taken once unchanged for settle_s: scan just after that.
                timer = threading.Timer(self._settle + 0.1, self._wake)
                timer.daemon = True
                timer.start()
        except OSError as exc:  # too many watches, say: the interval scans still run
            log.warning("cannot watch the inbox folder (%s); scanning on the interval only", exc)
