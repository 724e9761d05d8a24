"""The conversion job: original in storage -> display pyramid in storage -> manifest (commit)."""

import contextlib
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyvips

from plexzoom.core import keys
from plexzoom.core.child import ChildLimits, Report, run_in_child
from plexzoom.core.display import display_channels, open_image, to_display
from plexzoom.core.errors import CorruptImage, NotFound, PlexzoomError, StorageError
from plexzoom.core.jobs import Lease, LeaseLost, claim, commit, fail, new_holder, release, renew
from plexzoom.core.manifest import Manifest, Pyramid, read_manifest
from plexzoom.core.multichannel import convert_channels
from plexzoom.core.pyramid import Progress as PyramidProgress
from plexzoom.core.pyramid import PyramidOptions, build_pyramid
from plexzoom.core.readers import ReadOptions, open_source
from plexzoom.core.readers.base import UNREADABLE, check_size
from plexzoom.core.storage import Storage
from plexzoom.core.storage.background import BackgroundWriter

log = logging.getLogger(__name__)
PHOTO_FORMATS = ("png", "jpeg", "webp")  # shown as photographs, even when grey


@dataclass(frozen=True)
class ConvertOptions:
    """Settings of a conversion, passed in by the worker."""

    pyramid: PyramidOptions = field(default_factory=PyramidOptions)
    scratch_dir: Path | None = None
    max_attempts: int = 3
    progress_interval_s: float = 0.25
    channels_per_pass: int = 4  # channels stored as pages read at once (bounds memory)
    read: ReadOptions = field(default_factory=ReadOptions)  # header limits; variable per image
    lease_s: float = 60  # a job that has not renewed its lease for this long is presumed dead
    # None: build in this process (tests); else in a spawned child with these limits.
    child: ChildLimits | None = None
    child_setup: Callable[[], object] | None = None  # run first in the child (malloc arenas)


class Progress:
    """Stage and progress of a build, as the builder reports them (never going backwards)."""

    def __init__(self, report: Report) -> None:
        self._report, self._stage, self._value = report, "", 0.0

    def set(self, value: float) -> None:
        """Record progress (0..1)."""
        self._value = max(self._value, min(value, 1.0))
        self._report(self._stage, self._value)

    def stage(self, name: str, value: float) -> None:
        """Enter a new stage."""
        self._stage = name
        self.set(value)


class JobMonitor:
    """The job's side of a build: publishes progress and renews the lease, both at intervals."""

    def __init__(self, storage: Storage, lease: Lease, interval_s: float) -> None:
        self._storage, self._lease, self._interval = storage, lease, interval_s
        self.stage, self._value = "starting", 0.0
        self._written, self._renewed = (self.stage, self._value), time.monotonic()
        self._lock = threading.Lock()  # the builder and a ticker may both publish

    def report(self, stage: str, value: float) -> None:
        """Note the builder's latest stage and progress."""
        self.stage, self._value = stage, max(self._value, value)

    def tick(self) -> None:
        """Write a new stage at once, progress at most every interval, the lease in time."""
        with self._lock:
            latest = (self.stage, self._value)
            since = time.monotonic() - self._renewed
            moved = latest != self._written and since >= self._interval
            if not (latest[0] != self._written[0] or moved or since > self._lease.seconds / 4):
                return
            try:
                renew(self._storage, self._lease, *latest)
            except StorageError:
                log.warning("could not publish progress of %s", self._lease.image_id)
                return
            self._written, self._renewed = latest, time.monotonic()


def convert_image(storage: Storage, image_id: str, options: ConvertOptions) -> Manifest:
    """Run (or re-run, idempotently) the conversion of one image; permanent errors end 'failed'.

    Transient errors give the job back (status ``queued``) and are raised for a retry.
    """
    manifest, lease = claim(storage, image_id, new_holder(), options.lease_s, options.max_attempts)
    if lease is None:
        log.info("image %s is %s; nothing to do", image_id, manifest.status)
        return manifest
    # Leftovers of an earlier attempt of this generation: never visible, rewritten now.
    storage.delete_prefix(keys.generation_prefix(image_id, lease.generation))
    monitor = JobMonitor(storage, lease, options.progress_interval_s)
    try:
        try:
            built = _build(storage, manifest, options, monitor)
        except PlexzoomError as exc:
            if not exc.permanent:
                raise
            return fail(storage, lease, exc.message)
        committed = commit(storage, lease, built)
    except LeaseLost:
        return _after_losing(storage, lease, manifest)
    except BaseException:
        with contextlib.suppress(PlexzoomError):
            release(storage, lease)
        raise
    _remove_old_generations(storage, committed)
    return committed


def _build(
    storage: Storage, manifest: Manifest, options: ConvertOptions, monitor: JobMonitor
) -> Manifest:
    """Build the pyramids, in a child process when the options say so."""
    job = manifest.model_dump_json()
    if options.child is not None:
        built = run_in_child(
            build_image,
            (storage, job, options),
            options.child,
            monitor.report,
            monitor.tick,
            options.progress_interval_s,
            options.child_setup,
        )
        return Manifest.model_validate_json(built)
    stop = threading.Event()

    def renew_meanwhile() -> None:
        while not stop.wait(options.progress_interval_s):
            with contextlib.suppress(LeaseLost):  # the commit will notice
                monitor.tick()

    def report(stage: str, value: float) -> None:
        new_stage = stage != monitor.stage
        monitor.report(stage, value)
        if new_stage:  # published at once, as the child's loop does
            with contextlib.suppress(LeaseLost):
                monitor.tick()

    ticker = threading.Thread(target=renew_meanwhile, name="lease", daemon=True)
    ticker.start()
    try:
        return Manifest.model_validate_json(build_image(storage, job, options, report))
    finally:
        stop.set()
        ticker.join()


def build_image(storage: Storage, job: str, options: ConvertOptions, report: Report) -> str:
    """Download, read, build and store the pyramids; returns the manifest with the results.

    Writes only under the job's generation prefix, which no manifest names until the commit.
    """
    manifest = Manifest.model_validate_json(job)
    _run_conversion(storage, manifest, options, Progress(report))
    return manifest.model_dump_json()


def _after_losing(storage: Storage, lease: Lease, manifest: Manifest) -> Manifest:
    """Stop quietly: remove what this job wrote unless a newer run of it owns those keys."""
    log.info("image %s was deleted, re-queued or taken over during its conversion", lease.image_id)
    try:
        current = read_manifest(storage, lease.image_id)
    except NotFound:
        storage.delete_prefix(keys.image_prefix(lease.image_id))  # written after the delete
        return manifest
    if current.generation != lease.generation:
        storage.delete_prefix(keys.generation_prefix(lease.image_id, lease.generation))
    return current


def _run_conversion(
    storage: Storage, manifest: Manifest, options: ConvertOptions, progress: Progress
) -> None:
    """Download, read, build the pyramids in scratch space, store them; fills in the manifest."""
    with tempfile.TemporaryDirectory(dir=options.scratch_dir, prefix="plexzoom-") as scratch:
        original = Path(scratch) / "original"
        progress.stage("reading", 0.0)
        storage.download_file(keys.original_key(manifest.id), original)
        pyramids: dict[str, Pyramid] = {}

        def store(
            name: str, image: pyvips.Image, opts: PyramidOptions, prog: PyramidProgress
        ) -> Pyramid:
            pyramids[name] = store_pyramid(
                storage, manifest, Path(scratch), name, image, opts, prog
            )
            return pyramids[name]

        read = replace(options.read, variable=manifest.variable)
        with open_source(original, read) as source, _decoding():  # allow-list for every way in
            building = lambda p: progress.set(0.05 + 0.9 * p)  # noqa: E731
            if source.is_rgb or source.notes.get("source_format") in PHOTO_FORMATS:
                opened = open_image(original)  # the largest page, which may not be the reader's
                check_size(opened.width, opened.height, read)
                image = to_display(opened)
                progress.stage("building pyramid", 0.05)
                store("image", image, options.pyramid, building)
                manifest.channels = display_channels(image)
            else:
                progress.stage("building pyramids", 0.05)
                manifest.channels = convert_channels(
                    source, store, options.pyramid, building, Path(scratch),
                    options.channels_per_pass,
                )  # fmt: skip
            manifest.width, manifest.height = source.width, source.height
            manifest.dtype, manifest.physical_size = source.dtype, source.physical_size
            manifest.notes = _plain(source.notes)
    manifest.pyramids = pyramids


@contextmanager
def _decoding() -> Iterator[None]:
    """libvips errors while pixels are read mean a damaged file, never a retry."""
    try:
        yield
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc


def store_pyramid(
    storage: Storage,
    manifest: Manifest,
    scratch: Path,
    name: str,
    image: pyvips.Image,
    options: PyramidOptions,
    progress: PyramidProgress,
) -> Pyramid:
    """Build one pyramid and store it with its index; the archive uploads while it is written."""
    gen = manifest.generation
    archive = scratch / f"{name}.zip"
    upload = BackgroundWriter(storage.open_writer(keys.pyramid_key(manifest.id, gen, name)))
    try:
        index = build_pyramid(image, archive, options, progress, copy_to=upload.write)
        upload.commit()
    except BaseException:
        upload.abort()
        raise
    storage.put_bytes(keys.index_key(manifest.id, gen, name), index.to_json(), "application/json")
    size = archive.stat().st_size
    archive.unlink()
    return Pyramid(
        name=name,
        generation=gen,
        width=image.width,
        height=image.height,
        tile_size=index.tile_size,
        overlap=index.overlap,
        format=index.format,
        levels=len(index.levels),
        size=size,
    )


def _plain(notes: dict[str, Any]) -> dict[str, Any]:
    """Reader notes that fit in JSON (anything else is written as text)."""
    plain: dict[str, Any] = json.loads(json.dumps(notes, default=str))
    return plain


def _remove_old_generations(storage: Storage, manifest: Manifest) -> None:
    """Delete pyramids of earlier conversions once the new manifest is committed."""
    current = keys.generation_prefix(manifest.id, manifest.generation)
    for key in storage.list_keys(keys.image_prefix(manifest.id) + "pyramids/"):
        if not key.startswith(current):
            storage.delete(key)
