"""Generated Hamamatsu NDPI, Leica SCN and Ventana BIF slides that OpenSlide 4 opens as their
vendor's format, written tile by tile (or band by band) so that benchmark-sized slides are never
held whole. Each writer returns the level-0 pixels it wrote (``slide_pixels`` of the size it
wrote), or None with ``return_pixels=False``.

What OpenSlide's drivers require, read from openslide-vendor-hamamatsu.c, -leica.c and
-ventana.c:

- NDPI: TIFF tag 65420 on the first directory; every directory one strip holding one JPEG;
  levels have SourceLens (65421) > 0 and focal plane (65424) 0, in decreasing width; the macro
  has SourceLens -1. A level's tiles are its JPEG's restart intervals (one MCU row high), whose
  offsets McuStarts (65426) lists. Microns per pixel from X/YResolution in pixels per cm.
- SCN: a BigTIFF whose first directory is tiled and whose ImageDescription is the Leica XML
  (namespace .../scn/2010/10/01); the macro is the image at (0, 0) as big as the collection.
- BIF: the first directory's XMP holds ``<iScan>`` (its attributes become ``ventana.*``
  properties: ScanRes is the mpp, Magnification the objective); levels are tiled directories
  described "level=N mag=M", level 0's XMP holding the EncodeInfo tile-joint XML; "Label_Image"
  is the macro and "Thumbnail" the thumbnail.
"""

import base64
import struct
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal, overload
from xml.sax.saxutils import quoteattr

import numpy as np
import pyvips
import tifffile

from tests.slides import (
    APP_MAG,
    MPP,
    YCBCR_SUBSAMPLING,
    Planted,
    jpeg_bytes,
    jpeg_tiles,
    level_jpeg_tiles,
    level_pixels,
    level_shape,
    level_tile_pixels,
    macro_pixels,
    slide_pixels,
    write_stripped,
)

QUALITY = 90
TILE = 512  # SCN and BIF tiles (a Ventana DP 200 writes 1024; 512 keeps small slides small)
MCU = 8  # pixels a side of one 4:4:4 JPEG MCU: NDPI tiles are one MCU row high
NDPI_BAND = 256  # rows of a level JPEG-compressed at a time (a multiple of 8 MCU rows)
RST7 = b"\xff\xd7"
SCAN_DATE = "2026:03:14 09:26:53"
PREVIEW_WIDTH = 1000  # width of the tissue picture macros and thumbnails are made from

# TIFF field types, by the struct code of one value (R: RATIONAL, s: ASCII).
TIFF_TYPES = {"s": 2, "H": 3, "I": 4, "R": 5, "i": 9, "f": 11}
Entry = tuple[int, int, int, bytes]  # tag, TIFF type, count, little-endian value bytes
Tag = tuple[int, str, int | float | str | Sequence[int]]


def pyramid(size: tuple[int, int], step: int, smallest: int) -> list[int]:
    """Downsample factors 1, step, step**2, ... down to the first level at most ``smallest``
    pixels wide."""
    factors = [1]
    while level_shape(size, factors[-1])[0] > smallest:
        factors.append(factors[-1] * step)
    return factors


def preview(size: tuple[int, int]) -> np.ndarray:
    """The tissue about PREVIEW_WIDTH pixels wide, for the macro and thumbnail pictures."""
    return level_pixels(size, max(1, size[0] // PREVIEW_WIDTH))


def band_pixels(size: tuple[int, int], factor: int, top: int, shape: tuple[int, int]) -> np.ndarray:
    """Rows of ``slide_pixels(*size)[::factor, ::factor]`` from ``top``, ``shape`` (rows,
    cols) from the left edge, assembled from tiles computed one at a time."""
    rows, cols = shape
    tiles = [level_tile_pixels(size, factor, left, top, rows) for left in range(0, cols, rows)]
    return np.concatenate(tiles, axis=1)[:, :cols]


# --- Hamamatsu NDPI -------------------------------------------------------------------------


def restart_interval(width: int) -> int:
    """MCUs per restart interval: the smallest divisor of the MCUs in a row that makes a tile
    at least 512 pixels wide (OpenSlide needs whole intervals in each MCU row)."""
    mcus = width // MCU
    return next(n for n in range(min(64, mcus), mcus + 1) if mcus % n == 0)


def jpeg_header_length(jpeg: bytes) -> int:
    """Bytes from the JPEG's start to the end of its start-of-scan segment."""
    at = 2
    while True:
        marker, length = jpeg[at : at + 2], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        at += 2 + length
        if marker == b"\xff\xda":
            return at


def with_height(header: bytes, height: int) -> bytes:
    """A JPEG header with the height in its baseline start-of-frame set to ``height``."""
    sof = header.index(b"\xff\xc0")
    return header[: sof + 5] + height.to_bytes(2, "big") + header[sof + 7 :]


def restart_offsets(scan: bytes) -> np.ndarray:
    """Offsets just past each restart marker in entropy-coded data (whose 0xFF bytes are
    otherwise followed by 0x00, so a following 0xD0-0xD7 is always a marker)."""
    data = np.frombuffer(scan, dtype=np.uint8)
    found = (data[:-1] == 0xFF) & ((data[1:] & 0xF8) == 0xD0)
    return np.flatnonzero(found) + 2


def band_jpeg(pixels: np.ndarray, interval: int) -> bytes:
    """A band of RGB rows as a 4:4:4 JPEG with a restart marker every ``interval`` MCUs."""
    image = pyvips.Image.new_from_array(pixels).copy(interpretation="srgb")
    options = {"subsample_mode": "off", "keep": "none", "restart_interval": interval}
    return bytes(image.jpegsave_buffer(Q=QUALITY, **options))


def write_restart_jpeg(
    fh: BinaryIO, size: tuple[int, int], factor: int, shape: tuple[int, int]
) -> np.ndarray:
    """Write one level, ``shape`` (width, height) in whole MCUs, as a single JPEG with restart
    markers, band by band; returns the offsets from its start of each restart interval.

    Each band is its own JPEG with the same tables; bands hold 32 MCU rows, so a multiple of 8
    intervals, and joined by RST7 their markers run RST0-RST7 on as in one JPEG."""
    width, height = shape
    interval, start, header = restart_interval(width), fh.tell(), b""
    starts: list[np.ndarray] = []
    for top in range(0, height, NDPI_BAND):
        rows = min(NDPI_BAND, height - top)
        jpeg = band_jpeg(band_pixels(size, factor, top, (rows, width)), interval)
        length = jpeg_header_length(jpeg)
        if not header:
            header = with_height(jpeg[:length], height)
            fh.write(header)
        elif with_height(jpeg[:length], height) != header:
            raise ValueError("band JPEGs differ in their tables")
        else:
            fh.write(RST7)
        scan = jpeg[length:-2]  # the entropy-coded data, without the end-of-image marker
        at = fh.tell() - start
        starts += [np.array([at]), at + restart_offsets(scan)]
        fh.write(scan)
    fh.write(b"\xff\xd9")
    return np.concatenate(starts)


def tiff_entry(tag: int, code: str, value: int | float | str | Sequence[int]) -> Entry:
    """One little-endian TIFF field: ``code`` is a struct code (H, I, i, f), R for a RATIONAL
    given as (numerator, denominator), or s for ASCII."""
    if isinstance(value, str):
        data = value.encode() + b"\0"
        # NDPI keeps ASCII out of line even when it would fit the entry; tifffile reads up to
        # 4 bytes in line: values longer than that read the same either way.
        if len(data) <= 4:
            raise ValueError(f"NDPI ASCII tag {tag} must be over 4 bytes")
        return tag, TIFF_TYPES[code], len(data), data
    values = list(value) if isinstance(value, Sequence) else [value]
    if code == "R":
        return tag, TIFF_TYPES[code], 1, struct.pack("<II", *values)
    return tag, TIFF_TYPES[code], len(values), struct.pack(f"<{len(values)}{code}", *values)


def write_ndpi_ifd(fh: BinaryIO, tags: list[Tag]) -> tuple[int, int]:
    """Write a directory's out-of-line values, then the directory as NDPI lays it out: classic
    TIFF entries, an 8-byte next-directory offset, then each entry's 4 high offset bytes (zero:
    the file stays under 4 GB). Returns the directory's offset and its next-offset field's."""
    fields = []
    for tag, type_, count, data in sorted(tiff_entry(*tag) for tag in tags):
        if len(data) <= 4 and type_ != TIFF_TYPES["s"]:
            value = data.ljust(4, b"\0")
        else:
            fh.write(b"\0" * (fh.tell() % 2))
            value = struct.pack("<I", fh.tell())
            fh.write(data)
        fields.append(struct.pack("<HHI", tag, type_, count) + value)
    fh.write(b"\0" * (fh.tell() % 2))
    directory = fh.tell()
    fh.write(struct.pack("<H", len(fields)) + b"".join(fields))
    next_field = fh.tell()
    fh.write(bytes(8 + 4 * len(fields)))
    return directory, next_field


def write_ndpi_directories(fh: BinaryIO, pages: list[list[Tag]]) -> None:
    """Append the pages' directories, each linked from the header or the one before."""
    link = 4
    for tags in pages:
        directory, next_field = write_ndpi_ifd(fh, tags)
        fh.seek(link)
        fh.write(struct.pack("<Q", directory))
        fh.seek(0, 2)
        link = next_field
    if fh.tell() >= 2**32:
        raise ValueError("an NDPI over 4 GB needs its offsets' high bytes")


def ndpi_tags(
    shape: tuple[int, int], strip: tuple[int, int], lens: float, planted: Planted
) -> list[Tag]:
    """The tags of one NDPI directory: ``strip`` is its JPEG's (offset, length) and ``lens``
    the SourceLens (the level's magnification, -1 for the macro)."""
    width, height = shape
    image: list[Tag] = [
        (256, "I", width),
        (257, "I", height),
        (258, "H", (8, 8, 8)),
        (259, "H", 7),  # JPEG
        (262, "H", 6),  # YCbCr
        (273, "I", strip[0]),
        (277, "H", 3),
        (278, "I", height),  # one strip
        (279, "I", strip[1]),
        (YCBCR_SUBSAMPLING, "H", (1, 1)),
        (65421, "f", lens),
    ]
    return image + ndpi_slide_tags(planted)


def ndpi_slide_tags(planted: Planted) -> list[Tag]:
    """The tags every NDPI directory repeats: the scanner, the pixel size (X/YResolution in
    pixels per cm), the place on the glass, and the slide's name in the Reference (65427) and
    its barcode in the barcode tag (65468), as an NDP.scan scanner writes them."""
    per_cm = Fraction(10_000 / MPP).limit_denominator(1000)
    resolution = (per_cm.numerator, per_cm.denominator)
    return [
        (271, "s", "Hamamatsu"),
        (272, "s", "C13220"),
        (282, "R", resolution),
        (283, "R", resolution),
        (296, "H", 3),  # centimetre
        (305, "s", "NDP.scan 3.4.0"),
        (306, "s", SCAN_DATE),
        (65420, "I", 1),  # the NDPI format flag
        (65422, "i", 1_250_000),  # X offset from the slide's centre, nm
        (65423, "i", -640_000),
        (65424, "i", 0),  # focal plane
        (65427, "s", planted.filename),
        (65442, "s", "210104"),  # scanner serial number
        (65449, "s", "Created=2026/03/14\r\nUpdated=2026/03/14\r\nNDP.S/N=210104\r\n"),
        (65468, "s", planted.barcode),
    ]


def ndpi_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size an NDPI level 0 is written at: whole MCUs (OpenSlide's tiles are MCU rows and
    whole restart intervals, so a partial MCU would be out of its grid)."""
    return size[0] // MCU * MCU, size[1] // MCU * MCU


@overload
def write_ndpi(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[True] = ...,
) -> np.ndarray: ...


@overload
def write_ndpi(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[False],
) -> None: ...


def write_ndpi(
    path: Path,
    size: tuple[int, int] = (2000, 1496),
    planted: Planted = Planted(),
    *,
    return_pixels: bool = True,
) -> np.ndarray | None:
    """A Hamamatsu NDPI: levels /1, /4, /16, ... (to 1024 px wide or less), each one JPEG
    with restart markers, then the macro (label and tissue) as one plain JPEG.

    The size is rounded down to whole 8-pixel MCUs, as are the reduced levels (which hold
    ``slide_pixels[::factor, ::factor]`` cut to that). Returns the level-0 pixels, or None
    with ``return_pixels=False``.
    """
    size = ndpi_size(size)
    if max(size) > 65500:
        raise ValueError("an NDPI level this big needs the JPEG size overflow NDPI uses")
    pages: list[list[Tag]] = []
    with open(path, "wb") as fh:
        fh.write(b"II*\0" + bytes(8))  # NDPI's first-directory offset is 8 bytes
        for factor in pyramid(size, 4, 1024):
            shape = ndpi_size(level_shape(size, factor))
            start = fh.tell()
            starts = write_restart_jpeg(fh, size, factor, shape)
            tags = ndpi_tags(shape, (start, fh.tell() - start), APP_MAG / factor, planted)
            pages.append([*tags, (65426, "I", starts.tolist())])
        macro = macro_pixels(planted, preview(size))
        start = fh.tell()
        fh.write(jpeg_bytes(macro))
        pages.append(ndpi_tags((900, 300), (start, fh.tell() - start), -1, planted))
        write_ndpi_directories(fh, pages)
    return slide_pixels(*size) if return_pixels else None


# --- Leica SCN and Ventana BIF: tiled BigTIFF -------------------------------------------------


def write_tiled(
    tif: tifffile.TiffWriter,
    tiles: Iterator[bytes],
    shape: tuple[int, int],
    description: str,
    xmp: str = "",
    software: str = "",
    per_cm: float | None = None,
) -> None:
    """Append one tiled page (height, width) of TILE-square 4:4:4 JPEG tiles (as tifffile
    writes JPEG: Photometric YCbCr), optionally with an XMP packet (tag 700), a Software tag
    and a resolution in pixels per cm."""
    extratags = [(700, "B", len(xmp.encode()), xmp.encode(), True)] if xmp else []
    tif.write(
        tiles,
        shape=(*shape, 3),
        dtype=np.uint8,
        tile=(TILE, TILE),
        photometric="rgb",
        compression="jpeg",  # the tiles are already JPEG: tifffile writes them as they are
        subsampling=(1, 1),
        description=description,
        software=software or False,
        resolution=(per_cm, per_cm) if per_cm else None,
        resolutionunit=3 if per_cm else None,
        metadata=None,
        extratags=extratags,
    )


def scn_dimensions(shapes: list[tuple[int, int]], first_ifd: int) -> str:
    """The <dimension> elements of one image's levels, (width, height) each, in TIFF
    directories from ``first_ifd`` on."""
    return "".join(
        f'<dimension sizeX="{width}" sizeY="{height}" r="{r}" c="0" ifd="{first_ifd + r}"/>'
        for r, (width, height) in enumerate(shapes)
    )


def scn_image(name: str, pixels: str, view: tuple[int, int, int, int], objective: str) -> str:
    """One <image> of a Leica collection: its levels, its place (width, height, x, y in nm)
    and the scan settings OpenSlide reads (objective, aperture, illumination)."""
    width, height, x, y = view
    return (
        f'<image name="{name}" uuid="urn:uuid:{name.lower()}-20260314">'
        "<creationDate>2026-03-14T09:26:53.00Z</creationDate>"
        '<device model="Leica SCN400;Leica SCN" version="1.5.1.10864 2012/05/10 13:29:07"/>'
        f"<pixels>{pixels}</pixels>"
        f'<view sizeX="{width}" sizeY="{height}" offsetX="{x}" offsetY="{y}" spacingZ="0"/>'
        f"<scanSettings><objectiveSettings><objective>{objective}</objective>"
        "</objectiveSettings><illuminationSettings><numericalAperture>0.4</numericalAperture>"
        "<illuminationSource>brightfield</illuminationSource></illuminationSettings>"
        "</scanSettings></image>"
    )


def scn_xml(size: tuple[int, int], shapes: list[tuple[int, int]], planted: Planted) -> str:
    """The Leica XML of the first page: the collection (the slide's name and base64 barcode),
    its macro image in directory 0 and its main image's levels in directories 1 on.

    The collection is the scanned area itself, so that OpenSlide's level 0 is the main image;
    the main image sits half a pixel from its corner, as OpenSlide takes the image at (0, 0)
    as large as the collection for the macro."""
    nm = round(MPP * 1000)
    across, down = size[0] * nm, size[1] * nm
    macro = scn_image("Macro", scn_dimensions([(900, 300)], 0), (across, down, 0, 0), "0.6")
    main_view = (across, down, nm // 2, nm // 2)
    main = scn_image("Main", scn_dimensions(shapes, 1), main_view, str(APP_MAG))
    barcode = base64.b64encode(planted.barcode.encode()).decode()
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<scn xmlns="http://www.leica-microsystems.com/scn/2010/10/01">'
        f'<collection name={quoteattr(planted.filename)} uuid="urn:uuid:20260314-0926"'
        f' sizeX="{across}" sizeY="{down}"><barcode>{barcode}</barcode>'
        f"{macro}{main}</collection></scn>"
    )


@overload
def write_leica_scn(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[True] = ...,
) -> np.ndarray: ...


@overload
def write_leica_scn(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[False],
) -> None: ...


def write_leica_scn(
    path: Path,
    size: tuple[int, int] = (2000, 1500),
    planted: Planted = Planted(),
    *,
    return_pixels: bool = True,
) -> np.ndarray | None:
    """A Leica SCN: a BigTIFF whose directory 0 is the macro (label and tissue) under the
    Leica XML, then the main image's tiled JPEG levels /1, /4, /16, ... (to TILE px wide or
    less) with the pixel size in X/YResolution. Returns the level-0 pixels, or None with
    ``return_pixels=False``."""
    factors = pyramid(size, 4, TILE)
    shapes = [level_shape(size, factor) for factor in factors]
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        macro = macro_pixels(planted, preview(size))
        write_tiled(tif, jpeg_tiles(macro, TILE), macro.shape[:2], scn_xml(size, shapes, planted))
        for factor, (width, height) in zip(factors, shapes, strict=True):
            tiles = level_jpeg_tiles(size, factor, TILE, QUALITY)
            write_tiled(tif, tiles, (height, width), "", per_cm=10_000 / MPP / factor)
    return slide_pixels(*size) if return_pixels else None


def bif_tile_number(col: int, row: int, cols: int, rows: int) -> int:
    """Ventana's number (from 1) of the tile at (col, row) counted from the top left: tiles
    are numbered from the bottom row up, snaking (the bottom row left to right, the next
    right to left)."""
    from_bottom = rows - 1 - row
    along = col if from_bottom % 2 == 0 else cols - 1 - col
    return from_bottom * cols + along + 1


def bif_joints(cols: int, rows: int) -> str:
    """A <TileJointInfo> for each pair of neighbouring tiles, all joined without overlap:
    RIGHT from a tile to the one on its right, UP from a tile to the one above it."""
    joints = []
    for row in range(rows):
        for col in range(cols):
            if col + 1 < cols:
                joints.append(("RIGHT", (col, row), (col + 1, row)))
            if row > 0:
                joints.append(("UP", (col, row), (col, row - 1)))
    return "".join(
        f'<TileJointInfo FlagJoined="1" Confidence="100" Direction="{direction}"'
        f' Tile1="{bif_tile_number(*one, cols, rows)}" Tile2="{bif_tile_number(*two, cols, rows)}"'
        ' OverlapX="0" OverlapY="0"/>'
        for direction, one, two in joints
    )


def bif_encode_info(cols: int, rows: int) -> str:
    """Level 0's XMP: one scanned area (AOI) of cols x rows TILE-square tiles at the origin,
    its tile joints and its origin, which OpenSlide lays the tiles out by."""
    return (
        "<?xml version='1.0' encoding='utf-8' ?>"
        '<EncodeInfo Ver="2"><SlideInfo Rack="0" Slot="2"/><SlideStitchInfo>'
        f'<ImageInfo AOIScanned="1" AOIIndex="0" Width="{TILE}" Height="{TILE}"'
        f' NumRows="{rows}" NumCols="{cols}" Pos-X="0" Pos-Y="0">{bif_joints(cols, rows)}'
        '</ImageInfo></SlideStitchInfo><AoiOrigin><AOI0 OriginX="0" OriginY="0"/></AoiOrigin>'
        "</EncodeInfo>"
    )


def bif_iscan_xmp(planted: Planted) -> str:
    """The label page's XMP, as a VENTANA DP 200 writes it: the <iScan> attributes (each a
    ventana.* property) carry the barcode, the operator, the slide's annotation (the patient)
    and its file name, with the magnification and the pixel size."""
    attributes = {
        "Mode": "brightfield",
        "Magnification": str(APP_MAG),
        "ScanRes": str(MPP),
        "UnitNumber": "2000515",
        "ScannerModel": "VENTANA DP 200",
        "UserName": planted.user,
        "BuildVersion": "1.1.0.15854",
        "SlideAnnotation": planted.patient,
        "Barcode1D": planted.barcode,
        "Barcode2D": "",
        "BaseFileName": planted.filename,
        "ScanWhitePoint": "235",
    }
    iscan = " ".join(f"{name}={quoteattr(value)}" for name, value in attributes.items())
    return (
        "<?xml version='1.0' encoding='utf-8' ?><Metadata>"
        f'<iScan {iscan}><AOI0 Left="400" Top="290" Right="880" Bottom="10"/></iScan>'
        "</Metadata>"
    )


def bif_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size a BIF level 0 is written at: whole tiles, at least 2 x 2 (OpenSlide lays the
    tiles out by the joints between them, and sizes the level by its whole tiles)."""
    cols, rows = -(-size[0] // TILE), -(-size[1] // TILE)
    if cols < 2 or rows < 2:
        raise ValueError(f"a BIF needs at least 2 x 2 tiles of {TILE} px")
    return cols * TILE, rows * TILE


@overload
def write_ventana_bif(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[True] = ...,
) -> np.ndarray: ...


@overload
def write_ventana_bif(
    path: Path,
    size: tuple[int, int] = ...,
    planted: Planted = ...,
    *,
    return_pixels: Literal[False],
) -> None: ...


def write_ventana_bif(
    path: Path,
    size: tuple[int, int] = (2048, 1536),
    planted: Planted = Planted(),
    *,
    return_pixels: bool = True,
) -> np.ndarray | None:
    """A Ventana BIF: a BigTIFF of the Label_Image (the macro: label and tissue) under the
    <iScan> XMP, a Thumbnail, then tiled JPEG levels /1, /2, /4, ... (to TILE px wide or less)
    described "level=N mag=M", level 0 with the tile-joint XMP.

    The size is rounded up to whole tiles. Returns the level-0 pixels, or None with
    ``return_pixels=False``.
    """
    size = bif_size(size)
    software = "ScanOutputManager 1.1.0.15854"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        xmp = bif_iscan_xmp(planted).encode()
        tif.write(
            macro_pixels(planted, preview(size)),
            photometric="rgb",
            compression="zlib",
            rowsperstrip=16,
            description="Label_Image",
            software=software,
            metadata=None,
            extratags=[(700, "B", len(xmp), xmp, True)],
        )
        write_stripped(tif, preview(size), b"Thumbnail")
        for level, factor in enumerate(pyramid(size, 2, TILE)):
            width, height = level_shape(size, factor)
            tiles = level_jpeg_tiles(size, factor, TILE, QUALITY)
            description = f"level={level} mag={APP_MAG / factor:g} quality={QUALITY}"
            joints = bif_encode_info(size[0] // TILE, size[1] // TILE) if level == 0 else ""
            write_tiled(tif, tiles, (height, width), description, joints, software)
    return slide_pixels(*size) if return_pixels else None
