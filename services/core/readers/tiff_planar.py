"""Pages whose samples are stored as separate planes (PlanarConfiguration = 2).

libvips 8.18 cannot read tiled separate planes and misplaces rows of stripped ones with more than
one row per strip, so these pages bypass tiffload: uncompressed planes are mapped straight from
the file (``rawload``), compressed ones are decoded by tifffile one page at a time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyvips
import tifffile

from plexzoom.core.errors import CorruptImage
from plexzoom.core.readers.base import DTYPE_TO_VIPS, UNREADABLE, ReadOptions, check_memory
from plexzoom.core.readers.tiff_layout import tiff_page


def separate_plane_loader(
    path: Path, tif: tifffile.TiffFile, pages: list[int], bands: int, options: ReadOptions
) -> Callable[[int], pyvips.Image]:
    """Channel loader for separate-plane pages: channel i is plane i % bands of page i // bands."""
    first = tiff_page(tif, pages[0])
    size = (first.imagewidth, first.imagelength)
    dtype = np.dtype(first.dtype)
    fmt = DTYPE_TO_VIPS[dtype.name]
    offsets = [_plane_offsets(tiff_page(tif, page), dtype.itemsize) for page in pages]
    known = [page_offsets for page_offsets in offsets if page_offsets is not None]
    if len(known) == len(offsets):
        swap = tif.byteorder == ">" and dtype.itemsize > 1
        return partial(_load_raw, str(path), known, bands, size, fmt, swap)
    check_memory(first.nbytes, options, "This TIFF (samples stored as separate compressed planes)")
    return partial(_load_decoded, path, pages, bands, size, fmt)


def _plane_offsets(page: tifffile.TiffPage, itemsize: int) -> list[int] | None:
    """File offset of each sample plane when planes are uncompressed and contiguous, else None."""
    if page.compression != 1 or page.is_tiled or page.bitspersample % 8 or page.fillorder != 1:
        return None
    samples, offsets = page.samplesperpixel, page.dataoffsets
    strips = len(offsets) // samples
    row_bytes = page.imagewidth * itemsize
    step = page.rowsperstrip * row_bytes
    starts = []
    for s in range(samples):
        start = offsets[s * strips]
        if any(offsets[s * strips + k] != start + k * step for k in range(strips)):
            return None
        starts.append(start)
    return starts


def _load_raw(
    path: str,
    offsets: list[list[int]],
    bands: int,
    size: tuple[int, int],
    fmt: str,
    swap: bool,
    i: int,
) -> pyvips.Image:
    """Map one uncompressed plane from the file."""
    offset = offsets[i // bands][i % bands]
    image = pyvips.Image.rawload(path, size[0], size[1], 1, offset=offset, format=fmt)
    return image.byteswap() if swap else image


def _load_decoded(
    path: Path, pages: list[int], bands: int, size: tuple[int, int], fmt: str, i: int
) -> pyvips.Image:
    """Decode one page with tifffile and hand one of its planes to libvips."""
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.pages[pages[i // bands]].asarray()
    except (tifffile.TiffFileError, ValueError, OSError, struct.error) as exc:
        raise CorruptImage(UNREADABLE) from exc
    plane = np.ascontiguousarray(data.reshape(-1, size[1], size[0])[i % bands])
    plane = plane.astype(plane.dtype.newbyteorder("="), copy=False)
    return pyvips.Image.new_from_memory(plane, size[0], size[1], 1, fmt)
