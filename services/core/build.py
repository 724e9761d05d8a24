"""The build: original in storage -> reader -> display or channel pyramids -> storage.

It runs in the conversion child (or in the caller, for tests) and writes only under the job's
generation prefix, which no manifest names until the job commits (plexzoom.core.convert).
"""

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyvips

from plexzoom.core import keys
from plexzoom.core.child import Report
from plexzoom.core.display import display_channels, to_display
from plexzoom.core.errors import CorruptImage
from plexzoom.core.manifest import Manifest, Pyramid
from plexzoom.core.multichannel import convert_channels
from plexzoom.core.pyramid import Progress as PyramidProgress
from plexzoom.core.pyramid import PyramidOptions, build_pyramid
from plexzoom.core.readers import open_source
from plexzoom.core.readers.base import UNREADABLE
from plexzoom.core.readers.slide import slide_images
from plexzoom.core.storage import Storage

if TYPE_CHECKING:
    from plexzoom.core.convert import ConvertOptions


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


def build_image(storage: Storage, job: str, options: "ConvertOptions", report: Report) -> str:
    """Download, read, build and store the pyramids; returns the manifest with the results.

    Writes only under the job's generation prefix, which no manifest names until the commit.
    """
    manifest = Manifest.model_validate_json(job)
    _run_conversion(storage, manifest, options, Progress(report))
    return manifest.model_dump_json()


def _run_conversion(
    storage: Storage, manifest: Manifest, options: "ConvertOptions", progress: Progress
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
            if source.load_picture is not None:  # the composite is the image
                image = to_display(source.picture())
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
            if source.slide_path is not None:
                _slide_privacy(storage, manifest, source.slide_path, options.show_slide_labels)
    manifest.pyramids = pyramids


def _slide_privacy(storage: Storage, manifest: Manifest, path: Path, show: bool) -> None:
    """A slide's file name is withheld and its label and macro never stored; with
    ``show_slide_labels`` both are kept (the images beside the pyramids, by name)."""
    if not show:
        manifest.notes["filename_withheld"] = True
        return
    kept = []
    for name, png in slide_images(path).items():
        storage.put_bytes(keys.slide_image_key(manifest.id, manifest.generation, name), png,
                          "image/png")  # fmt: skip
        kept.append(name)
    manifest.notes.pop("slide_images_withheld", None)
    manifest.notes["slide_images"] = kept


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
    """Build one pyramid in scratch space, then store it and its index."""
    gen = manifest.generation
    archive = scratch / f"{name}.zip"
    index = build_pyramid(image, archive, options, progress)
    storage.upload_file(keys.pyramid_key(manifest.id, gen, name), archive)
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
