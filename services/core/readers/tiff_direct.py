"""Pages libvips' TIFF loader cannot read: separate planes, 64-bit floats, some compressions.

libvips 8.18 cannot load tiled separate planes, misplaces rows of stripped ones with more than one
row per strip, and refuses 64-bit samples. The libtiff in pyvips-binary has no old-style JPEG
decoder and draws JPEG 2000 and JPEG XL tiles black without an error. These pages bypass tiffload:
uncompressed data is mapped straight from the file (``rawload``), compressed data is decoded by
tifffile (codecs from imagecodecs) one page at a time, within the configured memory limit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyvips
import tifffile

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import DTYPE_TO_VIPS, UNREADABLE, ReadOptions, check_memory
from plexzoom.core.readers.tiff_layout import tiff_page

# TIFF Compression codes libvips decodes: none, CCITT RLE/G3/G4, LZW, JPEG, Deflate (both
# codes), PackBits, Zstandard, WebP. Others go to tifffile, or are refused (check_decodable).
VIPS_COMPRESSIONS = frozenset({1, 2, 3, 4, 5, 7, 8, 32773, 32946, 50000, 50001})
_OLD_JPEG = 6
_RESAVE = "Re-save it as a TIFF with LZW, Deflate or (new-style) JPEG compression and upload that."


def needs_direct(page: tifffile.TiffPage) -> bool:
    """Whether the page must bypass libvips' TIFF loader."""
    separate = page.planarconfig == 2 and page.samplesperpixel > 1
    wide = page.dtype is not None and np.dtype(page.dtype).itemsize == 8
    return separate or wide or int(page.compression) not in VIPS_COMPRESSIONS


def check_decodable(page: tifffile.TiffPage) -> None:
    """Refuse a page whose compression neither libvips nor tifffile can decode."""
    code = int(page.compression)
    if code in VIPS_COMPRESSIONS:
        return
    if code == _OLD_JPEG and "JPEGInterchangeFormat" not in page.tags:
        raise UnsupportedFormat(
            "This TIFF uses old-style JPEG compression (6) without the embedded JPEG stream "
            f"that plexzoom can decode. {_RESAVE}"
        )
    if code not in tifffile.TIFF.DECOMPRESSORS:
        raise UnsupportedFormat(
            f"This TIFF's pixels are compressed with a method plexzoom cannot decode "
            f"(TIFF compression {code}). {_RESAVE}"
        )


def direct_loader(
    path: Path, tif: tifffile.TiffFile, pages: list[int], bands: int, options: ReadOptions
) -> Callable[[int], pyvips.Image]:
    """Channel loader: channel i is sample i % bands of page i // bands."""
    first = tiff_page(tif, pages[0])
    dtype = np.dtype(first.dtype)
    shape = _Shape(first.imagewidth, first.imagelength, first.samplesperpixel, first.planarconfig)
    offsets = [_plane_offsets(tiff_page(tif, page), shape, dtype.itemsize) for page in pages]
    known = [page_offsets for page_offsets in offsets if page_offsets is not None]
    fmt = DTYPE_TO_VIPS[dtype.name]
    if len(known) == len(offsets):
        swap = tif.byteorder == ">" and dtype.itemsize > 1
        return partial(_load_raw, str(path), known, bands, shape, fmt, swap)
    check_memory(first.nbytes, options, "This TIFF (a layout libvips cannot stream)")
    return partial(_load_decoded, path, pages, bands, shape, fmt)


class _Shape:
    """Geometry of a page: size, samples, and whether samples are separate planes."""

    def __init__(self, width: int, height: int, samples: int, planarconfig: int) -> None:
        self.width, self.height, self.samples = width, height, samples
        self.separate = planarconfig == 2 and samples > 1

    @property
    def plane_bands(self) -> int:
        """Samples stored together in one plane."""
        return 1 if self.separate else self.samples


def _plane_offsets(page: tifffile.TiffPage, shape: _Shape, itemsize: int) -> list[int] | None:
    """File offset of each plane when uncompressed and stored contiguously, else None."""
    if page.compression != 1 or page.is_tiled or page.bitspersample % 8 or page.fillorder != 1:
        return None
    planes = shape.samples if shape.separate else 1
    offsets = page.dataoffsets
    strips = len(offsets) // planes
    step = page.rowsperstrip * shape.width * shape.plane_bands * itemsize
    starts = []
    for p in range(planes):
        start = offsets[p * strips]
        if any(offsets[p * strips + k] != start + k * step for k in range(strips)):
            return None
        starts.append(start)
    return starts


def _load_raw(
    path: str,
    offsets: list[list[int]],
    bands: int,
    shape: _Shape,
    fmt: str,
    swap: bool,
    i: int,
) -> pyvips.Image:
    """Map one uncompressed plane from the file and pick channel i's sample."""
    page, band = offsets[i // bands], i % bands
    offset = page[band] if shape.separate else page[0]
    image = pyvips.Image.rawload(
        path, shape.width, shape.height, shape.plane_bands, offset=offset, format=fmt
    )
    if swap:
        image = image.byteswap()
    return image if shape.separate else image.extract_band(band)


def _load_decoded(
    path: Path, pages: list[int], bands: int, shape: _Shape, fmt: str, i: int
) -> pyvips.Image:
    """Decode one page with tifffile and hand one of its samples to libvips."""
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.pages[pages[i // bands]].asarray()
    except (tifffile.TiffFileError, ValueError, OSError, struct.error) as exc:
        raise CorruptImage(UNREADABLE) from exc
    band = i % bands
    if shape.separate:
        plane = data.reshape(shape.samples, shape.height, shape.width)[band]
    else:
        plane = data.reshape(shape.height, shape.width, shape.samples)[:, :, band]
    plane = np.ascontiguousarray(plane, dtype=plane.dtype.newbyteorder("="))
    return pyvips.Image.new_from_memory(plane, shape.width, shape.height, 1, fmt)
