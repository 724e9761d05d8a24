"""Deep Zoom pyramids as one archive plus a byte-range index of its tiles (a cloud-optimised DZI).

libvips ``dzsave`` writes the pyramid into a zip with tiles stored uncompressed, so each tile
is a contiguous byte range of the archive: one upload to store it, one ranged GET per tile.

Deep Zoom facts: level L holds the image scaled by 2**(L - max_level), where max_level =
ceil(log2(max(width, height))); level 0 is 1x1 px. Tile (col, row) of a level covers
[col * tile_size - overlap, (col + 1) * tile_size + overlap) clipped to the level.
"""

import json
import math
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from plexzoom.core.errors import CorruptImage
from plexzoom.core.readers.base import UNREADABLE

TILE_FORMATS = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # zip local file header, 30 bytes

Progress = Callable[[float], None]


@dataclass(frozen=True)
class PyramidOptions:
    """How tiles are cut and encoded."""

    tile_size: int = 254
    overlap: int = 1
    format: str = "jpeg"
    quality: int = 85

    def tile_args(self) -> dict[str, Any]:
        """dzsave's arguments for the tile format.

        JPEG tiles take the quality as an argument: any ``suffix`` string, even ".jpeg", turns
        off libvips' direct JPEG tile writer and makes dzsave about 2x slower (bench/
        dzsave_options.py). PNG and WebP options can be given only in a suffix.
        """
        if self.format == "jpeg":
            return {"Q": self.quality, "keep": "none"}
        if self.format == "png":
            return {"suffix": ".png[compression=1]"}
        return {"suffix": f".{self.format}[Q={self.quality},keep=none]"}


@dataclass(frozen=True)
class TileIndex:
    """Where each tile of a pyramid lies in its archive."""

    format: str
    tile_size: int
    overlap: int
    width: int
    height: int
    levels: list[dict[str, Any]]

    @property
    def max_level(self) -> int:
        """The full-resolution level."""
        return len(self.levels) - 1

    def tile_range(self, level: int, col: int, row: int) -> tuple[int, int] | None:
        """(offset, length) of a tile in the archive, or None outside the pyramid."""
        if not 0 <= level < len(self.levels):
            return None
        entry = self.levels[level]
        if not (0 <= col < entry["cols"] and 0 <= row < entry["rows"]):
            return None
        i = row * entry["cols"] + col
        return entry["offsets"][i], entry["lengths"][i]

    def dzi_xml(self) -> str:
        """The .dzi descriptor OpenSeadragon and other DZI clients open."""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" '
            f'Format="{self.format}" Overlap="{self.overlap}" TileSize="{self.tile_size}">'
            f'<Size Width="{self.width}" Height="{self.height}"/></Image>\n'
        )

    def to_json(self) -> bytes:
        """Serialise for storage (read by the tile service and the presigned-mode viewer)."""
        body = {"version": 1, **self.__dict__}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "TileIndex":
        """Parse a stored index."""
        body = json.loads(raw)
        body.pop("version", None)
        return cls(**body)


def level_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """Pixel size of every Deep Zoom level, level 0 first."""
    max_level = math.ceil(math.log2(max(width, height, 1)))
    return [
        (math.ceil(width / 2 ** (max_level - lv)), math.ceil(height / 2 ** (max_level - lv)))
        for lv in range(max_level + 1)
    ]


def build_pyramid(
    image: pyvips.Image, out: Path, options: PyramidOptions, progress: Progress | None = None
) -> TileIndex:
    """Write ``image`` as a zip pyramid at ``out`` and return its tile index.

    libvips writes the file itself: passing the bytes through a Python callback (to upload
    while tiling) made dzsave about 10 % slower, more than the upload it would overlap.
    """
    if progress is not None:
        image.set_progress(True)
        image.signal_connect("eval", lambda _img, p: progress(p.percent / 100))
    try:
        image.dzsave(
            str(out),
            container="zip",
            compression=0,
            tile_size=options.tile_size,
            overlap=options.overlap,
            depth="onepixel",
            layout="dz",
            **options.tile_args(),
        )
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc
    return index_archive(out, image.width, image.height, options)


def index_archive(archive: Path, width: int, height: int, options: PyramidOptions) -> TileIndex:
    """Read a dzsave zip and record the byte range of every tile's data."""
    sizes = level_sizes(width, height)
    levels = [_empty_level(w, h, options.tile_size) for w, h in sizes]
    suffix = f".{options.format}"
    with archive.open("rb") as raw, zipfile.ZipFile(raw) as zf:
        for info in zf.infolist():
            parts = info.filename.split("/")
            if len(parts) != 3 or not parts[0].endswith("_files") or not parts[2].endswith(suffix):
                continue
            level = int(parts[1])
            col, row = (int(n) for n in parts[2][: -len(suffix)].split("_"))
            raw.seek(info.header_offset)
            header = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
            data_offset = info.header_offset + _LOCAL_HEADER.size + header[9] + header[10]
            entry = levels[level]
            i = row * entry["cols"] + col
            entry["offsets"][i], entry["lengths"][i] = data_offset, info.compress_size
    return TileIndex(options.format, options.tile_size, options.overlap, width, height, levels)


def _empty_level(width: int, height: int, tile_size: int) -> dict[str, Any]:
    cols, rows = math.ceil(width / tile_size), math.ceil(height / tile_size)
    return {
        "cols": cols,
        "rows": rows,
        "offsets": [0] * (cols * rows),
        "lengths": [0] * (cols * rows),
    }
