"""Resumable uploads: a file is created (or resumed), its missing parts sent in parallel,
completed and forgotten; several files go at once, each with its own parts in flight. What is
remembered between runs is in plexzoom.client.resume."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, as_completed, wait
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plexzoom.client.errors import NotFound, PlexzoomError, Refused, Stopped, fatal
from plexzoom.client.models import Image, StoredPart, Upload, UploadProgress, UploadResult
from plexzoom.client.parts import FilePart
from plexzoom.client.resume import FileKey, ResumeStore, Saved
from plexzoom.client.transfer import SIGN_BATCH, PartSender, Retry, Signer

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
        missing = upload.missing()
        reused = {n: p for n, p in upload.stored.items() if n not in missing}
        tally = Tally(path, upload, self.progress)
        tally.add(sum(upload.part_bytes(n) for n in reused), len(reused))
        sent_parts = self._send(path, upload, missing, tally)
        image = self._complete(key, path, upload, reused | sent_parts, tally)
        self.store.forget(key)
        sent = sum(upload.part_bytes(n) for n in sent_parts)
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

    def _send(
        self, path: Path, upload: Upload, numbers: list[int], tally: Tally
    ) -> dict[int, StoredPart]:
        """PUT the parts ``numbers``, ``parallel`` at a time; what the storage holds of them.

        The same threads hash the parts, SIGN_BATCH at a time: a hashed batch is signed in one
        call (a URL signs its part's CRC-32), and its PUTs are queued after the next batch's
        hashing, so the threads never wait for a signature."""
        if not numbers:
            return {}
        signer = Signer(lambda crc32s: self.client.sign_parts(upload.id, crc32s))
        sender = PartSender(
            self.client.parts_http, signer, self.retry, tally.add, self.sleep, self.stop
        )
        parts = [part_of(path, upload, n) for n in numbers]
        batches = [parts[i : i + SIGN_BATCH] for i in range(0, len(parts), SIGN_BATCH)]
        stored: dict[int, StoredPart] = {}

        def put(part: FilePart, crc32: str) -> None:
            stored[part.number] = sender.send(part, crc32)
            tally.add(0, 1)

        with ThreadPoolExecutor(self.parallel, thread_name_prefix="plexzoom-part") as pool:
            futures: list[Future[Any]] = []
            try:
                self._queue(pool, batches, sender, put, futures)
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
        if len(stored) < len(numbers):  # stopped between two batches
            raise Stopped(path.name)
        return stored

    def _queue(
        self,
        pool: ThreadPoolExecutor,
        batches: list[list[FilePart]],
        sender: PartSender,
        put: Callable[[FilePart, str], None],
        futures: list[Future[Any]],
    ) -> None:
        """Queue each batch's hashing, then its signing and PUTs behind the next batch's
        hashing, into ``futures``; no more after a stop or a failed part."""
        hashing = [pool.submit(sender.checksum, p) for p in batches[0]]
        for k, batch in enumerate(batches):
            futures += hashing
            wait(hashing, return_when=FIRST_EXCEPTION)
            if self.stop.is_set() or any(failed(f) for f in futures):
                return
            crc32s = [f.result() for f in hashing]
            sender.signer.add({p.number: c for p, c in zip(batch, crc32s, strict=True)})
            if k + 1 < len(batches):
                hashing = [pool.submit(sender.checksum, p) for p in batches[k + 1]]
            futures += [pool.submit(put, p, c) for p, c in zip(batch, crc32s, strict=True)]

    def _complete(
        self, key: FileKey, path: Path, upload: Upload, parts: dict[int, StoredPart], tally: Tally
    ) -> Image:
        """Complete the upload; parts the server says are missing are sent once more first."""
        if FileKey.of(path, self.client.url) != key:
            self.store.forget(key)
            self.client.abort_upload(upload.id)
            raise PlexzoomError(f"{path} changed while it was uploading; upload it again.")
        try:
            return self.client.complete_upload(upload.id, self._checksummed(path, upload, parts))
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
        held = {n: p for n, p in again.stored.items() if n not in missing}
        parts = {n: parts[n] if same(parts.get(n), p) else p for n, p in held.items()}
        parts |= self._send(path, upload, missing, tally)
        return self.client.complete_upload(upload.id, self._checksummed(path, upload, parts))

    def _checksummed(
        self, path: Path, upload: Upload, parts: dict[int, StoredPart]
    ) -> dict[int, StoredPart]:
        """``parts`` with every CRC-32, which completion names: those the server does not list
        (SeaweedFS, moto) are hashed from the file, unchanged since (its key says so)."""
        unknown = [n for n, p in parts.items() if p.crc32 is None]
        if not unknown:
            return parts
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="plexzoom-hash") as pool:
            crc32s = pool.map(FilePart.crc32, [part_of(path, upload, n) for n in unknown])
            known = zip(unknown, crc32s, strict=True)
            return parts | {n: replace(parts[n], crc32=crc32) for n, crc32 in known}


def outcome(future: Future[UploadResult]) -> Outcome:
    """A finished upload's result, or its PlexzoomError (any other error is raised)."""
    try:
        return future.result()
    except PlexzoomError as exc:
        return exc


def part_of(path: Path, upload: Upload, number: int) -> FilePart:
    """Part ``number`` of the file ``path`` in the upload's layout."""
    return FilePart(path, number, (number - 1) * upload.part_size, upload.part_bytes(number))


def same(sent: StoredPart | None, listed: StoredPart) -> bool:
    """Whether a part this run sent is the one the server lists (whose CRC-32 may be unknown)."""
    return sent is not None and sent.etag.strip('"') == listed.etag.strip('"')


def failed(future: Future[Any]) -> bool:
    """Whether a future has ended with an error (without waiting for it)."""
    return future.done() and not future.cancelled() and future.exception() is not None
