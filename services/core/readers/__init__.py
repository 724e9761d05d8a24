"""Readers: one per source format behind one interface, chosen from the file's magic bytes."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyvips

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import UNREADABLE, ChannelInfo, ChannelSource, ReadOptions
from plexzoom.core.readers.matlab import open_mat5
from plexzoom.core.readers.matlab_hdf5 import open_hdf5
from plexzoom.core.readers.numpy_array import open_npy
from plexzoom.core.readers.openslide_reader import open_openslide
from plexzoom.core.readers.raster import open_raster
from plexzoom.core.readers.slide_zip import open_slide_zip
from plexzoom.core.readers.tiff import open_tiff

__all__ = [
    "SOURCE_KINDS",
    "SOURCE_NAMES",
    "ChannelInfo",
    "ChannelSource",
    "ReadOptions",
    "open_source",
    "sniff_source",
]

SNIFF_BYTES = 520  # an HDF5 superblock may follow MATLAB's 512-byte header
SOURCE_NAMES = (
    "TIFF (including BigTIFF and OME-TIFF), whole-slide scans (Aperio SVS, Hamamatsu NDPI, "
    "Leica SCN, Philips TIFF, Ventana BIF, Trestle, Sakura SVSLIDE, DICOM WSI; MIRAX, DICOM "
    "series, Hamamatsu VMS/VMU and Trestle with its .Full file as one zip), "
    "MATLAB .mat (v5 and v7.3), HDF5, NumPy .npy, PNG, JPEG and WebP"
)
_HDF5 = b"\x89HDF\r\n\x1a\n"
_OPENERS: dict[str, Callable[[Path, ReadOptions], ChannelSource]] = {
    "tiff": open_tiff,
    "mat5": open_mat5,
    "mat73": partial(open_hdf5, matlab=True),
    "hdf5": partial(open_hdf5, matlab=False),
    "npy": open_npy,
    "png": partial(open_raster, kind="png"),
    "jpeg": partial(open_raster, kind="jpeg"),
    "webp": partial(open_raster, kind="webp"),
    "dicom": open_openslide,
    "svslide": open_openslide,
    "zip": open_slide_zip,
}
SOURCE_KINDS = tuple(_OPENERS)  # what sniff_source can answer


def sniff_source(head: bytes) -> str:
    """The source kind whose signature ``head`` carries, or raise UnsupportedFormat."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "mat5"
    if _HDF5 in (head[:8], head[512:520]):
        return "mat73" if head.startswith(b"MATLAB 7.3 MAT-file") else "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[128:132] == b"DICM":  # DICOM Part 10: a 128-byte preamble, then the magic
        return "dicom"
    if head.startswith(b"SQLite format 3\x00"):  # Sakura SVSLIDE (OpenSlide checks the rest)
        return "svslide"
    if head[:4] == b"PK\x03\x04":  # a multi-file slide in a zip (checked when it is read)
        return "zip"
    if head.startswith(b"MATLAB"):
        raise UnsupportedFormat(
            "This MATLAB file version is not supported; save it with save -v7 or save -v7.3."
        )
    raise UnsupportedFormat(
        f"This file is not an image plexzoom can read. Supported formats: {SOURCE_NAMES}."
    )


def open_source(path: Path, options: ReadOptions | None = None) -> ChannelSource:
    """Open ``path`` as channels; the format comes from the content, never the name."""
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
    kind = sniff_source(head)
    try:
        source = _OPENERS[kind](path, options or ReadOptions())
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc
    source.notes.setdefault("source_format", kind)
    return source
