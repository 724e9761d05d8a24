"""The conversion job: original in storage -> display pyramid in storage -> manifest (commit)."""

import json
import logging
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import pyvips

from plexzoom.core import keys
from plexzoom.core.display import display_channels, open_image, to_display
from plexzoom.core.errors import CorruptImage, NotFound, PlexzoomError
from plexzoom.core.manifest import Manifest, Pyramid, read_manifest, write_manifest
from plexzoom.core.multichannel import convert_channels
from plexzoom.core.pyramid import Progress, PyramidOptions, build_pyramid
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


class ProgressPublisher:
    """Writes the manifest's progress from a background thread so libvips never waits on storage."""

    def __init__(self, storage: Storage, manifest: Manifest, interval_s: float) -> None:
        self._storage, self._manifest, self._interval = storage, manifest, interval_s
        self._value, self._written = manifest.progress, manifest.progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)

    def set(self, value: float) -> None:
        """Record progress (0..1); never goes backwards."""
        self._value = max(self._value, min(value, 1.0))

    def stage(self, name: str, value: float) -> None:
        """Enter a new stage and publish it at once."""
        self.set(value)
        self._manifest.stage = name
        self._publish()

    def _publish(self) -> None:
        self._manifest.progress = round(self._value, 4)
        self._written = self._value
        try:
            if is_current(self._storage, self._manifest):
                write_manifest(self._storage, self._manifest)
        except PlexzoomError:
            log.warning("could not publish progress of %s", self._manifest.id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            if self._value > self._written:
                self._publish()

    def __enter__(self) -> "ProgressPublisher":
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()


def convert_image(storage: Storage, image_id: str, options: ConvertOptions) -> Manifest:
    """Run (or re-run, idempotently) the conversion of one image; permanent errors end 'failed'."""
    manifest = read_manifest(storage, image_id)
    if manifest.status not in ("queued", "processing"):
        log.info("image %s is %s; nothing to do", image_id, manifest.status)
        return manifest
    if manifest.attempts >= options.max_attempts:
        return _fail(storage, manifest, "The conversion failed repeatedly; upload the file again.")
    manifest.status, manifest.error, manifest.attempts = "processing", None, manifest.attempts + 1
    manifest.progress = 0.0
    try:
        with ProgressPublisher(storage, manifest, options.progress_interval_s) as progress:
            _run_conversion(storage, manifest, options, progress)
    except PlexzoomError as exc:
        if not exc.permanent:
            raise
        return _fail(storage, manifest, exc.message)
    manifest.status, manifest.stage, manifest.progress = "ready", "done", 1.0
    if not is_current(storage, manifest):
        log.info("image %s was deleted or re-queued during its conversion", image_id)
        storage.delete_prefix(keys.generation_prefix(manifest.id, manifest.generation))
        return manifest
    write_manifest(storage, manifest)
    _remove_old_generations(storage, manifest)
    return manifest


def is_current(storage: Storage, manifest: Manifest) -> bool:
    """True while the stored record still exists and names this job's generation.

    A DELETE or a re-conversion during a job must win: the job then writes nothing more.
    """
    try:
        return read_manifest(storage, manifest.id).generation == manifest.generation
    except NotFound:
        return False


def _run_conversion(
    storage: Storage, manifest: Manifest, options: ConvertOptions, progress: ProgressPublisher
) -> None:
    """Download, read, build the pyramids in scratch space, store them; fills in the manifest."""
    with tempfile.TemporaryDirectory(dir=options.scratch_dir, prefix="plexzoom-") as scratch:
        original = Path(scratch) / "original"
        progress.stage("reading", 0.0)
        storage.download_file(keys.original_key(manifest.id), original)
        pyramids: dict[str, Pyramid] = {}

        def store(name: str, image: pyvips.Image, opts: PyramidOptions, prog: Progress) -> Pyramid:
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
    progress: Progress,
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


def _fail(storage: Storage, manifest: Manifest, reason: str) -> Manifest:
    """Record a permanent failure; the original is kept so the user can retry."""
    manifest.status, manifest.error = "failed", reason
    if is_current(storage, manifest):
        write_manifest(storage, manifest)
    return manifest


def _remove_old_generations(storage: Storage, manifest: Manifest) -> None:
    """Delete pyramids of earlier conversions once the new manifest is committed."""
    current = keys.generation_prefix(manifest.id, manifest.generation)
    for key in storage.list_keys(keys.image_prefix(manifest.id) + "pyramids/"):
        if not key.startswith(current):
            storage.delete(key)
