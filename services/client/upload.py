"""Resumable uploads: a file is created (or resumed), its missing parts sent in parallel,
completed and forgotten; several files go at once, each with its own parts in flight. What is
remembered between runs is in plexzoom.client.resume."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import TYPE_CHECKING

from plexzoom.client.errors import NotFound, PlexzoomError, Refused, Stopped, fatal
from plexzoom.client.models import Image, Upload, UploadProgress, UploadResult
from plexzoom.client.parts import FilePart
from plexzoom.client.resume import FileKey, ResumeStore, Saved
from plexzoom.client.transfer import PartSender, Retry, Signer

if TYPE_CHECKING:
    from plexzoom.client.client import Client


class Tally:
    """Bytes and parts done so far, told to a progress callback (thread-safe)."""

    def __init__(
        self, path: Path, upload: Upload, callback: Callable[[UploadProgress], None] | None
    ) -> None:
        self.path, self.total, self.parts = path, upload.size, upload.parts
        self.callback, self._lock = callback, threading.Lock()
        self.done_bytes = self.done_parts = 0

    def add(self, nbytes: int, parts: int = 0) -> None:
        """Count bytes sent (negative: a failed try's bytes) and parts finished."""
        with self._lock:
            self.done_bytes += nbytes
            self.done_parts += parts
            now = UploadProgress(self.path, self.done_bytes, self.total, self.done_parts,
                                 self.parts)  # fmt: skip
        if self.callback is not None:
            self.callback(now)


Outcome = UploadResult | PlexzoomError


class Uploader:
    """Uploads files to one server through a Client, resuming what an earlier run left.

    Setting ``stop`` stops every upload of this uploader: no part starts after it, parts under
    way are dropped, and the uploads stay resumable. Backoff waits end early when it is set.
    """

    def __init__(
        self,
        client: Client,
        parallel: int = 4,
        progress: Callable[[UploadProgress], None] | None = None,
        retry: Retry | None = None,
        sleep: Callable[[float], object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.client, self.parallel, self.progress = client, max(1, parallel), progress
        self.stop = stop or threading.Event()
        self.retry, self.sleep = retry or Retry(), sleep or self.stop.wait
        self.store = ResumeStore(client.state_dir)

    def run_many(
        self, paths: Iterable[Path], files: int = 2, variable: str | None = None
    ) -> Generator[tuple[Path, Outcome]]:
        """Upload ``files`` of ``paths`` at a time; each path with its result or error, as
        each one ends. An error that concerns every file (the key, the server) stops the rest,
        which then end Stopped; Ctrl-C while iterating stops them all and is raised again."""
        pool = ThreadPoolExecutor(max(1, files), thread_name_prefix="plexzoom-file")
        futures = {pool.submit(self._run_one, path, variable): path for path in paths}
        try:
            for future in as_completed(futures):
                yield futures[future], outcome(future)
        except BaseException:  # Ctrl-C, a bug, or the caller stopped iterating
            self.stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_one(self, path: Path, variable: str | None) -> UploadResult:
        """``run``, setting the stop when the error is fatal (before another file starts)."""
        try:
            return self.run(path, variable)
        except PlexzoomError as exc:
            if fatal(exc):
                self.stop.set()
            raise

    def run(self, path: Path, variable: str | None = None) -> UploadResult:
        """Upload ``path``; the image it became and what was sent."""
        if self.stop.is_set():
            raise Stopped(path.name)
        if not path.is_file():
            raise PlexzoomError(f"{path} is not a file.")
        key = FileKey.of(path, self.client.url)
        if key.size == 0:
            raise PlexzoomError(f"{path} is empty: there is nothing to upload.")
        upload, finished = self._resume(key)
        if finished is not None:
            return UploadResult(path, finished, key.size, 0, 0, 0, 0)
        if upload is None:
            upload = self.client.create_upload(key.size, path.name, variable)
            self.store.save(key, Saved(upload.id, upload.part_size, upload.parts))
        reused = {n: etag for n, (_size, etag) in upload.stored.items()}
        for n in upload.missing():
            reused.pop(n, None)
        tally = Tally(path, upload, self.progress)
        tally.add(sum(upload.part_bytes(n) for n in reused), len(reused))
        etags = self._send(path, upload, upload.missing(), tally)
        image = self._complete(key, path, upload, {**reused, **etags}, tally)
        self.store.forget(key)
        sent = sum(upload.part_bytes(n) for n in etags)
        return UploadResult(path, image, key.size, upload.parts, upload.parts - len(reused),
                            len(reused), sent)  # fmt: skip

    def _resume(self, key: FileKey) -> tuple[Upload | None, Image | None]:
        """The unfinished upload of this file on the server, or the image it already became."""
        saved = self.store.load(key)
        if saved is None:
            return None, None
        try:
            upload = self.client.get_upload(saved.upload_id)
        except NotFound:
            self.store.forget(key)
            try:  # completed by a run that stopped before it forgot the upload
                image = self.client.status(saved.upload_id)
            except NotFound:
                return None, None
            return None, (image if image.status != "uploading" else None)
        if (upload.size, upload.part_size) != (key.size, saved.part_size):
            self.store.forget(key)
            return None, None
        return upload, None

    def _send(self, path: Path, upload: Upload, numbers: list[int], tally: Tally) -> dict[int, str]:
        """PUT the parts ``numbers``, ``parallel`` at a time; their ETags."""
        if not numbers:
            return {}
        signer = Signer(lambda batch: self.client.sign_parts(upload.id, batch), numbers)
        sender = PartSender(
            self.client.parts_http, signer, self.retry, tally.add, self.sleep, self.stop
        )
        etags: dict[int, str] = {}

        def one(number: int) -> None:
            offset = (number - 1) * upload.part_size
            etags[number] = sender.send(FilePart(path, number, offset, upload.part_bytes(number)))
            tally.add(0, 1)

        with ThreadPoolExecutor(self.parallel, thread_name_prefix="plexzoom-part") as pool:
            futures = [pool.submit(one, n) for n in numbers]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            except KeyboardInterrupt:  # only ever raised here when run() is on the main thread
                self.stop.set()
                raise
            finally:  # a failed part, a stop or Ctrl-C: start no more parts
                pool.shutdown(wait=False, cancel_futures=True)
        errors = [e for f in futures if not f.cancelled() and (e := f.exception()) is not None]
        errors.sort(key=lambda e: isinstance(e, Stopped))  # a part's own error comes first
        if errors:
            raise errors[0]
        return etags

    def _complete(
        self, key: FileKey, path: Path, upload: Upload, etags: dict[int, str], tally: Tally
    ) -> Image:
        """Complete the upload; parts the server says are missing are sent once more first."""
        if FileKey.of(path, self.client.url) != key:
            self.store.forget(key)
            self.client.abort_upload(upload.id)
            raise PlexzoomError(f"{path} changed while it was uploading; upload it again.")
        try:
            return self.client.complete_upload(upload.id, etags)
        except Refused as exc:
            if exc.status != 409:
                self.store.forget(key)  # 400, 413, 415: the server will not take this file
                raise
            conflict = exc
        try:
            again = self.client.get_upload(upload.id)
        except NotFound:  # "completed already": by another run of the same file
            return self.client.status(upload.id)
        missing = again.missing()
        if not missing:
            raise conflict
        etags |= {n: etag for n, (_size, etag) in again.stored.items() if n not in missing}
        etags |= self._send(path, upload, missing, tally)
        return self.client.complete_upload(upload.id, etags)


def outcome(future: Future[UploadResult]) -> Outcome:
    """A finished upload's result, or its PlexzoomError (any other error is raised)."""
    try:
        return future.result()
    except PlexzoomError as exc:
        return exc
