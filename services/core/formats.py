"""Upload formats, detected from magic bytes (never from file names) by the readers' sniffer."""

import io
from dataclasses import dataclass

from plexzoom.core.errors import UnsupportedFormat
from plexzoom.core.readers import SNIFF_BYTES, SOURCE_NAMES, ReadOptions, sniff_source
from plexzoom.core.readers.slide_zip import check_slide_zip
from plexzoom.core.storage import Storage

__all__ = ["SNIFF_BYTES", "SUPPORTED", "SUPPORTED_NAMES", "Format", "sniff_format"]


@dataclass(frozen=True)
class Format:
    """A supported upload format: what people call it and the names its files usually have
    (shown to them; plexzoom itself goes by the file's first bytes)."""

    name: str
    media_type: str
    label: str
    extensions: tuple[str, ...]


TIFF = Format("tiff", "image/tiff", "TIFF (BigTIFF, OME-TIFF)", (".tif", ".tiff", ".btf"))
PNG = Format("png", "image/png", "PNG", (".png",))
JPEG = Format("jpeg", "image/jpeg", "JPEG", (".jpg", ".jpeg"))
WEBP = Format("webp", "image/webp", "WebP", (".webp",))
MAT5 = Format("mat5", "application/x-matlab-data", "MATLAB v5", (".mat",))
MAT73 = Format("mat73", "application/x-matlab-data", "MATLAB v7.3", (".mat",))
HDF5 = Format("hdf5", "application/x-hdf5", "HDF5", (".h5", ".hdf5"))
NPY = Format("npy", "application/x-npy", "NumPy array", (".npy",))
DICOM = Format("dicom", "application/dicom", "DICOM WSI", (".dcm",))
ZIP = Format("zip", "application/zip", "Zip of one multi-file slide (MIRAX, DICOM)", (".zip",))
SVSLIDE = Format("svslide", "application/x-sqlite3", "Sakura SVSLIDE", (".svslide",))
SUPPORTED = (TIFF, PNG, JPEG, WEBP, MAT5, MAT73, HDF5, NPY, DICOM, ZIP, SVSLIDE)
SUPPORTED_NAMES = SOURCE_NAMES


def sniff_format(head: bytes) -> Format:
    """Return the format whose signature starts ``head``, or raise UnsupportedFormat."""
    return format_by_name(sniff_source(head))


def format_by_name(name: str) -> Format:
    """Return the supported format called ``name``."""
    for fmt in SUPPORTED:
        if fmt.name == name:
            return fmt
    raise UnsupportedFormat(f"Unknown format {name!r}. Supported formats: {SUPPORTED_NAMES}.")


def check_stored(storage: Storage, key: str, fmt: Format, size: int) -> None:
    """Checks an upload needs beyond its first bytes: a zip must hold one slide (its directory
    is read by ranges at the end of the object); raise a 4xx error otherwise."""
    if fmt is not ZIP:
        return
    from plexzoom.core.pixels import RangedObject  # the pixel lookup's ranged reader

    ranged = io.BufferedReader(RangedObject(storage, key, size).file(), 64 * 1024)
    try:
        check_slide_zip(ranged, ReadOptions())
    except UnsupportedFormat as exc:
        raise UnsupportedFormat(f"{exc.message} Supported formats: {SUPPORTED_NAMES}.") from exc
