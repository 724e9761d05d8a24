"""An ObjectWriter that uploads from a background thread, so the producer never waits on storage."""

import queue
import threading

from plexzoom.core.storage.base import ObjectWriter

_DONE = None


class BackgroundWriter:
    """Wraps a writer: ``write`` queues bytes (a bounded queue), a thread sends them on."""

    def __init__(self, writer: ObjectWriter, max_queued_chunks: int = 64) -> None:
        self._writer = writer
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=max_queued_chunks)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="upload", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not _DONE:
            if self._error is None:
                try:
                    self._writer.write(chunk)
                except BaseException as exc:  # handed to the producer on its next call
                    self._error = exc

    def write(self, data: bytes) -> None:
        """Queue ``data``; raises the upload's error, if one happened."""
        if self._error is not None:
            raise self._error
        if data:
            self._queue.put(bytes(data))

    def commit(self) -> None:
        """Wait for every queued byte, then make the object visible."""
        self._finish()
        if self._error is not None:
            self._writer.abort()
            raise self._error
        self._writer.commit()

    def abort(self) -> None:
        """Stop and discard everything."""
        self._finish()
        self._writer.abort()

    def _finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
