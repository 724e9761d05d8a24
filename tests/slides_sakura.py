"""A generated Sakura SVSLIDE that OpenSlide 4 opens as vendor "sakura".

What OpenSlide's driver (openslide-vendor-sakura.c) requires of the SQLite database:

- ``DataManagerSQLiteConfigXPO`` has exactly one row, whose ``TableName`` names the data table;
  that table maps a text ``id`` to its ``data``.
- The data table's ``++MagicBytes`` row holds the text ``SVGigaPixelImage`` (the format test),
  ``++VersionBytes`` a version string (the ``sakura.VersionBytes`` property) and ``Header`` a
  little-endian blob: tile size, width and height as uint32 at bytes 0, 4 and 8, and the count
  of focal planes as uint32 at byte 16.
- Every tile is three rows, one greyscale JPEG per colour, with the id
  ``T;x|y;downsample;colour;plane``: x and y are its corner in level-0 pixels, the downsample a
  power of two (each one seen in plane 0 makes a level of ``size // downsample`` pixels),
  colour 0, 1, 2 for red, green, blue. Tiles are whole; OpenSlide clips them at the level edge.
- Properties come from ``SVSlideDataXPO`` joined to ``SVHRScanDataXPO`` on ``ParentSlide =
  OID``: SlideId, Date, Description, Creator, DiagnosisCode, Keywords (never NULL: OpenSlide
  reads them as text) and ScanId, ResolutionMmPerPix (the mpp, times 1000),
  NominalLensMagnification (the objective) and FocussingMethod.
- The label and macro are JPEGs in ``SVScannedImageDataXPO.Image``, found by the slide's
  ``m_labelScan`` and ``m_overviewScan``; the thumbnail is ``SVHRScanDataXPO.ThumbnailImage``.
"""

import sqlite3
import struct
from pathlib import Path

import numpy as np
import pyvips

from tests.slides import (
    APP_MAG,
    MPP,
    Planted,
    jpeg_bytes,
    label_pixels,
    level_pixels,
    macro_pixels,
    slide_pixels,
    vips_pixels,
)

MAGIC = "SVGigaPixelImage"
VERSION = "1.0.0"
TILE = 256
QUALITY = 90
DATA_TABLE = "SVGigaPixelImage_5f0c2d1e"
SCAN_DATE = "2026-03-14 09:26:53"
SCAN_ID = "8d3c1f2a-4b7e-4c10-9a55-2e6f0b7d9c41"
LABEL_OID = 1
MACRO_OID = 2

SCHEMA = f"""
CREATE TABLE DataManagerSQLiteConfigXPO (OID INTEGER PRIMARY KEY, TableName TEXT);
CREATE TABLE "{DATA_TABLE}" (id TEXT PRIMARY KEY, data BLOB);
CREATE TABLE SVScannedImageDataXPO (OID INTEGER PRIMARY KEY, Image BLOB);
CREATE TABLE SVSlideDataXPO (
    OID INTEGER PRIMARY KEY, SlideId TEXT, Date TEXT, Description TEXT, Creator TEXT,
    DiagnosisCode TEXT, Keywords TEXT, m_labelScan INTEGER, m_overviewScan INTEGER
);
CREATE TABLE SVHRScanDataXPO (
    OID INTEGER PRIMARY KEY, ParentSlide INTEGER, ScanId TEXT, Date TEXT, Name TEXT,
    Description TEXT, ResolutionMmPerPix REAL, NominalLensMagnification REAL,
    FocussingMethod TEXT, ThumbnailImage BLOB
);
"""


def grey_jpeg(channel: np.ndarray) -> bytes:
    """One colour plane of a tile (TILE x TILE uint8) as a greyscale JPEG."""
    image = pyvips.Image.new_from_array(np.ascontiguousarray(channel)).copy(interpretation="b-w")
    return bytes(image.jpegsave_buffer(Q=QUALITY, keep="none"))


def tile_id(x: int, y: int, downsample: int, colour: int, plane: int = 0) -> str:
    """The data table id of one colour of the tile whose corner is (x, y) in level-0 pixels."""
    return f"T;{x}|{y};{downsample};{colour};{plane}"


def level_rows(size: tuple[int, int], downsample: int) -> list[tuple[str, bytes]]:
    """The data table rows of one level: each whole tile, padded by repeating its last row and
    column, as three greyscale JPEGs."""
    pixels = level_pixels(size, downsample)
    height, width = pixels.shape[:2]
    rows = []
    for top in range(0, height, TILE):
        for left in range(0, width, TILE):
            part = pixels[top : top + TILE, left : left + TILE]
            pad = ((0, TILE - part.shape[0]), (0, TILE - part.shape[1]), (0, 0))
            whole = np.pad(part, pad, mode="edge")
            for colour in range(3):
                key = tile_id(left * downsample, top * downsample, downsample, colour)
                rows.append((key, grey_jpeg(whole[..., colour])))
    return rows


def downsamples(size: tuple[int, int]) -> list[int]:
    """Powers of two from 1 until the level fits in one tile."""
    factors = [1]
    while max(size) // factors[-1] > TILE:
        factors.append(factors[-1] * 2)
    return factors


def header(size: tuple[int, int], focal_planes: int = 1) -> bytes:
    """The Header blob: tile size, width, height, a reserved word, focal planes."""
    return struct.pack("<5I", TILE, size[0], size[1], 0, focal_planes)


def thumbnail_jpeg(base: np.ndarray) -> bytes:
    """The scan's thumbnail: the base shrunk to 256 pixels wide, as a JPEG."""
    small = pyvips.Image.new_from_array(base).resize(256 / base.shape[1])
    return jpeg_bytes(vips_pixels(small))


def write_svslide(
    path: Path, size: tuple[int, int] = (2048, 1536), planted: Planted = Planted()
) -> np.ndarray:
    """A Sakura SVSLIDE database at ``path``: JPEG tile levels (full, /2, /4, ...), mpp,
    objective, label, macro and thumbnail. The barcode is the SlideId, the patient the
    Description, the user the Creator and the file name the Keywords and scan Name. Returns
    the base (level-0) RGB pixels."""
    width, height = size
    base = slide_pixels(width, height)
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path)
    try:
        db.executescript(SCHEMA)
        db.execute("INSERT INTO DataManagerSQLiteConfigXPO VALUES (1, ?)", (DATA_TABLE,))
        insert = f'INSERT INTO "{DATA_TABLE}" (id, data) VALUES (?, ?)'
        db.executemany(
            insert,
            [("++MagicBytes", MAGIC), ("++VersionBytes", VERSION), ("Header", header(size))],
        )
        for downsample in downsamples(size):
            db.executemany(insert, level_rows(size, downsample))
        db.executemany(
            "INSERT INTO SVScannedImageDataXPO VALUES (?, ?)",
            [
                (LABEL_OID, jpeg_bytes(label_pixels(planted))),
                (MACRO_OID, jpeg_bytes(macro_pixels(planted, base))),
            ],
        )
        db.execute(
            "INSERT INTO SVSlideDataXPO VALUES (1, ?, ?, ?, ?, '', ?, ?, ?)",
            (
                planted.barcode,
                SCAN_DATE,
                planted.patient,
                planted.user,
                planted.filename,
                LABEL_OID,
                MACRO_OID,
            ),
        )
        db.execute(
            "INSERT INTO SVHRScanDataXPO VALUES (1, 1, ?, ?, ?, '', ?, ?, 'Automatic', ?)",
            (SCAN_ID, SCAN_DATE, planted.filename, MPP / 1000, APP_MAG, thumbnail_jpeg(base)),
        )
        db.commit()
    finally:
        db.close()
    return base
