"""Writer for a generated Hamamatsu VMS slide that OpenSlide 4 opens as vendor "hamamatsu": a
``.vms`` key file beside the JPEG images it names (the level-0 image cut into a grid of JPEGs, a
small "map" JPEG that OpenSlide reads as a low-resolution level), the ``.opt`` optimisation file
and the ``_macro.jpg`` overview picture.

What OpenSlide's VMS reader needs (src/openslide-vendor-hamamatsu.c):

- the key file's ``[Virtual Microscope Specimen]`` group with ``NoJpegColumns`` and
  ``NoJpegRows`` >= 1, one ``ImageFile`` key per JPEG (``ImageFile`` for (0, 0), then
  ``ImageFile(col,row)``) and a ``MapFile``; every key is reported as a ``hamamatsu.<key>``
  property, ``SourceLens`` as the objective power, and ``PhysicalWidth`` / ``PhysicalHeight``
  (nanometres across the level-0 image) give ``openslide.mpp-x`` / ``mpp-y``;
- every image JPEG, the map too, has restart markers, whose interval divides the MCUs of a row:
  OpenSlide reads one restart interval of one MCU row as a tile (here 256 x 8, 4:4:4), and adds
  levels at 1/2, 1/4 and 1/8 through libjpeg's DCT scaling when the tile's sides allow;
- the JPEGs of the grid share the tile size and all but the last column (row) the same number of
  tiles across (down);
- the ``.opt`` file holds, JPEG after JPEG in row-major order (the map has none), one 40-byte
  record per MCU row whose first bytes are the little-endian offset of that row's first byte,
  just after a restart marker. OpenSlide notes that scanners' files seem to lack the last row's
  record of the last JPEG and only takes the records as hints; this one leaves it out too.

Where the identifying strings are: the scanner names every file of a scan after the slide's name
and scan time (OpenSlide's CMU-1 sample: "CMU-1-40x - 2010-01-12 13.24.05(1,0).jpg"); here the
key file was renamed SLIDE.vms, but the files it names keep ``Planted.filename``, so it is in the
``hamamatsu.ImageFile``, ``MapFile``, ``OptimisationFile`` and ``MacroImage`` properties (and in
the zip's entry names). The patient, barcode and user are on the label, which only the macro
image shows; no key and no JPEG comment carries them."""

import struct
from pathlib import Path

import numpy as np
import pyvips

from tests.slides import APP_MAG, MPP, Planted, jpeg_bytes, macro_pixels, slide_pixels
from tests.slides_multifile import OVERVIEW_MPP, SCANNED

VMS_GROUP = "Virtual Microscope Specimen"
# The level-0 image is cut into this grid of JPEGs (columns, rows).
VMS_GRID = (2, 2)
# 4:4:4 JPEGs: an MCU is 8 x 8 pixels, and a restart marker follows every 32 MCUs, so a tile is
# 256 x 8 (as the CMU-1 sample's 4096 x 8, narrower).
VMS_MCU = 8
VMS_RESTART_MCUS = 32
VMS_TILE = (VMS_MCU * VMS_RESTART_MCUS, VMS_MCU)
# The map is the slide subsampled by this factor: distinct from the 1/2, 1/4 and 1/8 levels.
VMS_MAP_FACTOR = 16
VMS_OPT_RECORD = 40
VMS_QUALITY = 90
# Where the scanned area's centre lies from the glass's centre, in nanometres.
VMS_OFFSET_NM = (-3_215_000, 1_480_000)


def restart_jpeg(pixels: np.ndarray, restart_mcus: int) -> bytes:
    """RGB pixels as a 4:4:4 JPEG with a restart marker after every ``restart_mcus`` MCUs."""
    image = pyvips.Image.new_from_array(np.ascontiguousarray(pixels)).copy(interpretation="srgb")
    return bytes(
        image.jpegsave_buffer(
            Q=VMS_QUALITY, subsample_mode="off", keep="none", restart_interval=restart_mcus
        )
    )


def scan_start(jpeg: bytes) -> int:
    """Offset of the first entropy-coded byte: just after the start-of-scan segment."""
    at = 2  # after SOI
    while True:
        if jpeg[at] != 0xFF:
            raise ValueError(f"no JPEG marker at offset {at}")
        marker = jpeg[at + 1]
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if marker == 0xDA:
            return at


def restart_ends(jpeg: bytes) -> list[int]:
    """Offsets just after each restart marker (FF D0 to FF D7) of a JPEG's entropy-coded data;
    there a 0xFF byte is always followed by 0x00 (stuffed) or a marker."""
    data = np.frombuffer(jpeg, dtype=np.uint8)
    start = scan_start(jpeg)
    ff = np.flatnonzero(data[start:-1] == 0xFF) + start
    follows = data[ff + 1]
    return [int(at) + 2 for at in ff[(follows >= 0xD0) & (follows <= 0xD7)]]


def row_starts(jpeg: bytes, width: int, height: int) -> list[int]:
    """Offset of each MCU row's first byte in a JPEG written by restart_jpeg: the scan's start
    for row 0, else the end of the restart marker that closes the row above."""
    per_row = width // VMS_MCU // VMS_RESTART_MCUS
    ends = restart_ends(jpeg)
    rows = height // VMS_MCU
    if len(ends) != rows * per_row - 1:
        raise ValueError(f"expected {rows * per_row - 1} restart markers, found {len(ends)}")
    return [scan_start(jpeg)] + [ends[row * per_row - 1] for row in range(1, rows)]


def vms_stem(planted: Planted) -> str:
    """What a NanoZoomer names a scan's files: the slide's name and the scan time."""
    return f"{planted.filename} - {SCANNED:%Y-%m-%d %H.%M.%S}"


def check_vms_size(size: tuple[int, int]) -> None:
    """Refuse a size this writer cannot cut into whole tiles: each JPEG of the grid must be
    whole 256 x 8 tiles, and the 1/16 map whole 8 x 8 MCUs."""
    width, height = size
    columns, rows = VMS_GRID
    if width % (columns * VMS_TILE[0]) or height % (rows * VMS_TILE[1]):
        raise ValueError(
            f"a VMS slide of {width} x {height} is not {columns} x {rows} JPEGs of whole "
            f"{VMS_TILE[0]} x {VMS_TILE[1]} tiles"
        )
    if width % (VMS_MAP_FACTOR * VMS_MCU) or height % (VMS_MAP_FACTOR * VMS_MCU):
        raise ValueError(f"the 1/{VMS_MAP_FACTOR} map of {width} x {height} is not whole MCUs")


def write_vms(
    folder: Path, size: tuple[int, int] = (2048, 1536), planted: Planted = Planted()
) -> tuple[Path, np.ndarray]:
    """A Hamamatsu VMS slide in ``folder``: SLIDE.vms naming a 2 x 2 grid of restart-marked
    JPEGs, the 1/16 map JPEG, the .opt file and the macro JPEG (label and tissue). Returns the
    .vms path and the base RGB pixels (height x width x 3)."""
    check_vms_size(size)
    width, height = size
    columns, rows = VMS_GRID
    piece_w, piece_h = width // columns, height // rows
    folder.mkdir(parents=True, exist_ok=True)
    stem = vms_stem(planted)
    base = slide_pixels(width, height)

    keys: dict[str, str] = {
        "NoLayers": "1",
        "LayerSpacing": "0",
        "NoJpegColumns": str(columns),
        "NoJpegRows": str(rows),
    }
    optimisation = bytearray()
    for row in range(rows):
        for column in range(columns):
            at = "" if (column, row) == (0, 0) else f"({column},{row})"
            name = f"{stem}{at}.jpg"
            piece = base[
                row * piece_h : (row + 1) * piece_h, column * piece_w : (column + 1) * piece_w
            ]
            jpeg = restart_jpeg(piece, VMS_RESTART_MCUS)
            (folder / name).write_bytes(jpeg)
            keys[f"ImageFile{at}"] = name
            for offset in row_starts(jpeg, piece_w, piece_h):
                optimisation += struct.pack("<Q", offset).ljust(VMS_OPT_RECORD, b"\0")
    # As in files from the scanner, the last MCU row of the last JPEG has no record.
    del optimisation[-VMS_OPT_RECORD:]

    map_pixels = base[::VMS_MAP_FACTOR, ::VMS_MAP_FACTOR]
    names = {
        "MapFile": f"{stem}_map2.jpg",
        "OptimisationFile": f"{stem}.opt",
        "MacroImage": f"{stem}_macro.jpg",
    }
    (folder / names["MapFile"]).write_bytes(
        restart_jpeg(map_pixels, map_pixels.shape[1] // VMS_MCU)
    )
    (folder / names["OptimisationFile"]).write_bytes(bytes(optimisation))
    macro = macro_pixels(planted, base)
    (folder / names["MacroImage"]).write_bytes(jpeg_bytes(macro))
    keys.update(names)

    macro_nm = (
        round(macro.shape[1] * OVERVIEW_MPP * 1000),
        round(macro.shape[0] * OVERVIEW_MPP * 1000),
    )
    keys.update(
        {
            "PhysicalWidth": str(round(width * MPP * 1000)),
            "PhysicalHeight": str(round(height * MPP * 1000)),
            "PhysicalMacroWidth": str(macro_nm[0]),
            "PhysicalMacroHeight": str(macro_nm[1]),
            "XOffsetFromSlideCentre": str(VMS_OFFSET_NM[0]),
            "YOffsetFromSlideCentre": str(VMS_OFFSET_NM[1]),
            "SourceLens": str(APP_MAG),
        }
    )
    lines = [f"[{VMS_GROUP}]", *(f"{key}={value}" for key, value in keys.items())]
    vms = folder / "SLIDE.vms"
    # Written on Windows by the scanner's software: CRLF line ends.
    vms.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return vms, base
