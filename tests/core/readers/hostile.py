"""Hand-built hostile files: headers that lie about their size, offsets that point nowhere."""

import io
import struct
import zlib

import numpy as np
import pyvips
import tifffile

# TIFF field types: SHORT and LONG.
_SHORT, _LONG = 3, 4
# Width, length, strip offsets, rows per strip, strip and tile byte counts, tile offsets.
_LONG_TAGS = {256, 257, 273, 278, 279, 324, 325}


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB pixels, followed by one tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 16))  # one filtered row, at most
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND")


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    """One PNG chunk: length, type, data, CRC of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiff_claiming(
    width: int, height: int, data_offset: int | None = None, tiled: bool = False
) -> bytes:
    """A little-endian 8-bit grey TIFF, one strip (or one 256 x 256 tile), whose header claims
    ``width`` x ``height``; its data is 64 bytes at ``data_offset`` (default: in the file).
    """
    count = min(width * height, 0xFFFFFFFF)
    layout = [(322, 256), (323, 256), (324, 0), (325, 256 * 256)] if tiled else [
        (273, 0), (278, height), (279, count)
    ]  # fmt: skip
    tags = {256: width, 257: height, 258: 8, 259: 1, 262: 1, 277: 1, **dict(layout)}
    ifd_end = 8 + 2 + 12 * len(tags) + 4
    offset_tag = 324 if tiled else 273  # TileOffsets or StripOffsets
    tags[offset_tag] = ifd_end if data_offset is None else data_offset
    ifd = struct.pack("<H", len(tags))
    for tag, value in sorted(tags.items()):
        if tag in _LONG_TAGS:
            ifd += struct.pack("<HHII", tag, _LONG, 1, value)
        else:
            ifd += struct.pack("<HHIHH", tag, _SHORT, 1, value, 0)
    ifd += struct.pack("<I", 0)  # no next IFD
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x80" * 64


def jpeg_claiming(width: int, height: int) -> bytes:
    """A valid 16 x 16 baseline JPEG whose SOF0 is rewritten to claim ``width`` x ``height``."""
    data = bytearray(pyvips.Image.black(16, 16).jpegsave_buffer(Q=90))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_with_garbage_strips() -> bytes:
    """A 256 x 256 uint16 grey TIFF whose deflate strips are overwritten with noise."""
    out = io.BytesIO()
    pixels = np.random.default_rng(1).integers(0, 4000, (256, 256), dtype=np.uint16)
    tifffile.imwrite(out, pixels, compression="zlib", rowsperstrip=32)
    data = bytearray(out.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        page = tif.pages.first
        strips = list(zip(page.dataoffsets, page.databytecounts, strict=True))
    for offset, count in strips:
        data[offset : offset + count] = bytes(i * 37 % 256 for i in range(count))
    return bytes(data)


def tiff_with_absurd_counts() -> bytes:
    """A 64 x 64 TIFF whose StripOffsets and StripByteCounts claim a billion entries each."""
    data = bytearray(tiff_claiming(64, 64))
    for i in range(struct.unpack_from("<H", data, 8)[0]):
        at = 10 + 12 * i
        if struct.unpack_from("<H", data, at)[0] in (273, 279):
            struct.pack_into("<II", data, at + 4, 0x3FFF_FFFF, 16)  # count, value offset
    return bytes(data)
