"""Whole-slide scans are private by default: what identifies a person is never shown.

A slide's file name is usually the case's accession number or the patient's name, so it is
withheld from the record when the upload looks like a slide (by its name's ending or its first
bytes) and again when the conversion finds a slide driver's metadata. ``PLEXZOOM_SHOW_SLIDE_LABELS``
turns this off, for labs whose slides carry no patient data.
"""

from __future__ import annotations

import io
import logging
from pathlib import PurePosixPath

import tifffile

from plexzoom.core.readers.slide import SLIDE_KINDS

log = logging.getLogger(__name__)
# Bytes of an upload read before its record is made: a TIFF's first page and description.
PRIVACY_HEAD_BYTES = 64 * 1024
SLIDE_EXTENSIONS = frozenset(
    (".svs", ".ndpi", ".scn", ".bif", ".mrxs", ".vms", ".vmu", ".dcm", ".zip", ".svslide")
)
_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
# Text a vendor writes near the start of its TIFFs, for first pages tifffile cannot parse
# from the head alone.
_VENDOR_MARKERS = (
    b"Aperio",
    b"DPUfsImport",
    b"leica-microsystems",
    b"iScan",
    b"Hamamatsu",
    b"MedScan",
)


def looks_like_slide(filename: str | None, head: bytes) -> bool:
    """Whether an upload named ``filename`` starting with ``head`` is a whole-slide scan."""
    return _judge(filename, head) is True


def _judge(filename: str | None, head: bytes) -> bool | None:
    """True for a slide, False for none, None for a TIFF whose first page lies past ``head``
    (the first page is parsed once)."""
    suffix = PurePosixPath((filename or "").replace("\\", "/")).suffix.lower()
    if suffix in SLIDE_EXTENSIONS:
        return True
    if head[128:132] == b"DICM" or head[:4] == b"PK\x03\x04" or head.startswith(b"SQLite"):
        return True
    if head[:4] not in _TIFF:
        return False
    if any(marker in head for marker in _VENDOR_MARKERS):
        return True
    return _vendor_tiff(head)


def shown_filename(filename: str | None, head: bytes, show_slide_labels: bool) -> str | None:
    """The file name the record shows: None for a slide, unless labels are to be shown."""
    return record_names(filename, head, show_slide_labels)[0]


def record_names(
    filename: str | None, head: bytes, show_slide_labels: bool
) -> tuple[str | None, str | None]:
    """(the name the record shows, the name it keeps hidden until the conversion tells whether
    the file is a slide): a TIFF whose first page lies past ``head`` cannot be told yet."""
    if show_slide_labels or filename is None:
        return filename, None
    slide = _judge(filename, head)
    if slide is None:
        return None, filename
    return (None, None) if slide else (filename, None)


def _vendor_tiff(head: bytes) -> bool | None:
    """tifffile's vendor flags on the first page; None when ``head`` does not hold it."""
    try:
        with tifffile.TiffFile(io.BytesIO(head)) as tif:
            return any(getattr(tif, f"is_{kind}") for kind in SLIDE_KINDS)
    except Exception as exc:  # a first page that lies past the head
        log.debug("first TIFF page not in the head: %s", type(exc).__name__)
        return None
