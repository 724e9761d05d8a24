"""Writers for two more generated whole-slide formats OpenSlide 4 opens: a Hamamatsu VMU (vendor
"hamamatsu") and a Trestle TIFF (vendor "trestle").

What OpenSlide's VMU reader needs (src/openslide-vendor-hamamatsu.c):

- a key file whose ``[Uncompressed Virtual Microscope Specimen]`` group has ``BitsPerPixel=36``
  and ``PixelOrder=RGB``, an ``ImageFile`` (level 0) and a ``MapFile`` (level 1), both NGR
  files; every key is reported as a ``hamamatsu.<key>`` property, ``SourceLens`` as the
  objective power, and ``PhysicalWidth`` / ``PhysicalHeight`` (nanometres across level 0) give
  ``openslide.mpp-x`` / ``mpp-y``; an optional ``MacroImage`` JPEG is the ``macro`` (a macro
  that does not open fails the whole slide);
- an NGR file: "GN", two bytes OpenSlide skips, then little-endian int32 width, height and
  column width, eight skipped bytes and the int32 offset of the pixels. The width must be whole
  columns; the pixels are stored column after column (each ``column width`` pixels wide and the
  image's height tall, row-major inside), each pixel three little-endian uint16 R, G, B of
  12 bits, which OpenSlide shifts right by 4. It reads each column as tiles 64 rows tall.

What OpenSlide's Trestle reader needs (src/openslide-vendor-trestle.c):

- a TIFF whose first page's Software starts "MedScan" and that has an ImageDescription; every
  page must be tiled, and every page is a level (no associated image is a page);
- the description is ``key=value`` pairs separated by ";", each reported as ``trestle.<key>``;
  ``Objective Power`` gives the objective power, ``Background Color`` (hex RRGGBB) the
  background colour, and ``OverlapsXY`` (x y per level) how much neighbouring tiles overlap
  (here none, so OpenSlide reports the tile size);
- the mpp is XResolution / YResolution taken as micrometres per pixel (OpenSlide notes this is
  a non-standard use of those tags), whatever the ResolutionUnit;
- the ``macro`` is a JPEG beside the TIFF named as it with its extension replaced by ".Full";
  OpenSlide quietly leaves the macro out if that file is missing or unreadable.

Where the identifying strings are: in the VMU, as in the VMS, the scanner names the files after
the slide's name and the scan time, so ``Planted.filename`` is in the ``hamamatsu.ImageFile``,
``MapFile`` and ``MacroImage`` properties. The Trestle TIFF itself is named after
``Planted.filename`` (so is its ".Full" macro), but no property carries it. In both, the
patient, barcode and user are only on the label that the macro image shows."""

import struct
from pathlib import Path

import numpy as np
import tifffile

from tests.slides import (
    MPP,
    Planted,
    jpeg_bytes,
    macro_pixels,
    mark_jpeg_pages,
    slide_pixels,
    write_jpeg_tiled,
)

VMU_GROUP = "Uncompressed Virtual Microscope Specimen"
# The scan time NanoZoomers put in file names (the VMS writer's sample scan time).
VMU_SCANNED = "2026-03-14 09.26.53"
NGR_MAGIC = b"GN"
# Header: magic, 2 unknown bytes, width, height, column width, 8 unknown bytes, pixel offset.
NGR_HEADER = struct.Struct("<2s2siii8si")
NGR_TILE_HEIGHT = 64
# Level 0 is stored in columns this wide; the 1/16 map in columns of a sixteenth of it.
VMU_COLUMN = 256
VMU_MAP_FACTOR = 16
VMU_LENS = 20

TRESTLE_SOFTWARE = "MedScan 1.0.0.0"
TRESTLE_TILE = 256
# Level 0, then these downsamples, each a tiled page.
TRESTLE_FACTORS = (1, 4, 16)
TRESTLE_LENS = 10


def ngr_bytes(pixels: np.ndarray, column: int) -> bytes:
    """RGB pixels (height x width x 3) as an NGR file: 12-bit samples (each 8-bit value v as
    v * 16 + v // 16, which OpenSlide's shift by 4 turns back into v) stored column by column."""
    height, width = pixels.shape[:2]
    if width % column:
        raise ValueError(f"an NGR of width {width} is not whole columns of {column}")
    header = NGR_HEADER.pack(NGR_MAGIC, b"\0\0", width, height, column, b"\0" * 8, NGR_HEADER.size)
    wide = pixels.astype("<u2")
    samples = (wide << 4) | (wide >> 4)
    # (height, columns, column, 3) -> (columns, height, column, 3): one column after another.
    columns = samples.reshape(height, width // column, column, 3).transpose(1, 0, 2, 3)
    return header + np.ascontiguousarray(columns).tobytes()


def check_vmu_size(size: tuple[int, int]) -> None:
    """Refuse a size whose level 0 or 1/16 map is not whole NGR columns."""
    width, height = size
    if width % VMU_COLUMN or height % VMU_MAP_FACTOR:
        raise ValueError(
            f"a VMU slide of {width} x {height} is not whole {VMU_COLUMN}-pixel columns with a "
            f"whole 1/{VMU_MAP_FACTOR} map"
        )


def write_vmu(
    folder: Path, size: tuple[int, int] = (2048, 1536), planted: Planted = Planted()
) -> tuple[Path, np.ndarray]:
    """A Hamamatsu VMU slide in ``folder``: SLIDE.vmu naming the level-0 NGR file, the 1/16 map
    NGR and the macro JPEG (label and tissue). Returns the .vmu path and the base RGB pixels
    (height x width x 3)."""
    check_vmu_size(size)
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{planted.filename} - {VMU_SCANNED}"
    base = slide_pixels(width, height)
    names = {
        "ImageFile": f"{stem}.ngr",
        "MapFile": f"{stem}_map.ngr",
        "MacroImage": f"{stem}_macro.jpg",
    }
    (folder / names["ImageFile"]).write_bytes(ngr_bytes(base, VMU_COLUMN))
    map_pixels = base[::VMU_MAP_FACTOR, ::VMU_MAP_FACTOR]
    (folder / names["MapFile"]).write_bytes(ngr_bytes(map_pixels, VMU_COLUMN // VMU_MAP_FACTOR))
    (folder / names["MacroImage"]).write_bytes(jpeg_bytes(macro_pixels(planted, base)))
    keys = {
        "NoLayers": "1",
        "LayerSpacing": "0",
        "BitsPerPixel": "36",
        "PixelOrder": "RGB",
        **names,
        "PhysicalWidth": str(round(width * MPP * 1000)),
        "PhysicalHeight": str(round(height * MPP * 1000)),
        "SourceLens": str(VMU_LENS),
    }
    lines = [f"[{VMU_GROUP}]", *(f"{key}={value}" for key, value in keys.items())]
    vmu = folder / "SLIDE.vmu"
    vmu.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return vmu, base


def trestle_description(levels: int) -> bytes:
    """A Trestle ImageDescription: ``key=value`` pairs separated by ";"."""
    properties = {
        "Background Color": "F5F5F5",
        "White Balance": "FFFFFF",
        "Objective Power": str(TRESTLE_LENS),
        "JPEG Quality": "90",
        "OverlapsXY": " ".join(["0 0"] * levels),
    }
    return ";".join(f"{key}={value}" for key, value in properties.items()).encode()


def write_trestle(
    folder: Path, size: tuple[int, int] = (2048, 1536), planted: Planted = Planted()
) -> tuple[Path, np.ndarray]:
    """A Trestle slide in ``folder``: ``<Planted.filename>.tif`` with tiled JPEG levels (full,
    /4, /16) under a MedScan description, and ``<Planted.filename>.Full``, the macro JPEG.
    Returns the .tif path and the base RGB pixels (height x width x 3)."""
    width, height = size
    folder.mkdir(parents=True, exist_ok=True)
    base = slide_pixels(width, height)
    path = folder / f"{planted.filename}.tif"
    description = trestle_description(len(TRESTLE_FACTORS))
    with tifffile.TiffWriter(path) as tif:
        for factor in TRESTLE_FACTORS:
            text = description if factor == 1 else b""
            write_jpeg_tiled(tif, base[::factor, ::factor], text, 0, TRESTLE_TILE, TRESTLE_SOFTWARE)
    mark_jpeg_pages(path)
    # OpenSlide takes XResolution / YResolution as micrometres per pixel.
    with tifffile.TiffFile(path, mode="r+b") as tif:
        for page in tif.pages:
            mpp = (round(MPP * 1000), 1000)
            page.tags["XResolution"].overwrite(mpp)
            page.tags["YResolution"].overwrite(mpp)
    (folder / f"{planted.filename}.Full").write_bytes(jpeg_bytes(macro_pixels(planted, base)))
    return path, base
