"""The TIFF, PNG and JPEG variants labs really have, generated here and read back exactly."""

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.errors import UnsupportedFormat
from plexzoom.core.readers import open_source
from plexzoom.core.storage import Storage
from tests.conftest import decode
from tests.core.test_convert import read_tile, store_original

RNG = np.random.default_rng(13)
WHITE = RNG.integers(0, 2, (40, 57)).astype(bool)  # True where the page is white
GREY16 = RNG.integers(0, 65536, (40, 56)).astype(np.uint16)
RGB = RNG.integers(0, 256, (64, 48, 3)).astype(np.uint8)
PALETTE = np.array([[0, 0, 255], [255, 0, 0], [0, 255, 0], [255, 255, 128]], np.uint8)
# Smooth colour for conversions: tiles are JPEG, which blurs noise and halves chroma.
_Y, _X = np.mgrid[0:64, 0:48]
SMOOTH = np.stack([_X * 5, _Y * 4, 255 - _X * 5], axis=-1).astype(np.uint8)
INDICES = RNG.integers(0, 4, (40, 56)).astype(np.uint8)


def read_all(path: Path) -> tuple[np.ndarray, dict[str, object]]:
    """Every channel of ``path`` as (height, width, channels), and the reader's notes."""
    with open_source(path) as source:
        data = source.bands(range(len(source.channels))).numpy()
        return data.reshape(source.height, source.width, -1), source.notes


def bilevel_tiff(path: Path, compression: str, miniswhite: bool) -> Path:
    """A 1-bit TIFF written by libvips (the way its own test images are made)."""
    grey = pyvips.Image.new_from_array((WHITE * 255).astype(np.uint8))
    grey.tiffsave(str(path), bitdepth=1, compression=compression, miniswhite=miniswhite)
    return path


@pytest.mark.parametrize("miniswhite", [False, True])
@pytest.mark.parametrize("compression", ["none", "packbits", "ccittfax4"])
def test_bilevel_tiff(tmp_path: Path, compression: str, miniswhite: bool) -> None:
    """Bilevel TIFFs read as 8-bit grey, 255 where the file means white."""
    path = bilevel_tiff(tmp_path / "fax.tif", compression, miniswhite)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        assert (page.bitspersample, int(page.photometric)) == (1, 0 if miniswhite else 1)
        if compression != "ccittfax4":  # what the file stores, independent of libvips
            assert (page.asarray() == (~WHITE if miniswhite else WHITE)).all()
    data, notes = read_all(path)
    assert data.dtype == np.uint8 and data.shape == (*WHITE.shape, 1)
    assert (data[..., 0] == WHITE * 255).all()
    assert notes["bilevel"] is True


def test_ccitt_group3_bilevel_tiff(tmp_path: Path) -> None:
    """CCITT Group 3 fax compression, written by Pillow's libtiff (libvips writes only G4)."""
    from PIL import Image  # Pillow comes with openslide-python

    path = tmp_path / "fax-g3.tif"
    Image.fromarray(WHITE.astype(bool)).save(path, compression="group3")
    with tifffile.TiffFile(path) as tif:
        assert (tif.pages.first.compression, tif.pages.first.bitspersample) == (3, 1)
    data, notes = read_all(path)
    assert (data[..., 0] == WHITE * 255).all() and notes["bilevel"] is True


def test_palette_tiff(tmp_path: Path) -> None:
    """A palette TIFF reads as the RGB of its colour map."""
    colormap = np.zeros((3, 256), np.uint16)
    colormap[:, :4] = PALETTE.T.astype(np.uint16) * 257
    path = tmp_path / "palette.tif"
    tifffile.imwrite(path, INDICES, photometric="palette", colormap=colormap)
    data, _ = read_all(path)
    assert (data == PALETTE[INDICES]).all()


def test_palette_png(tmp_path: Path) -> None:
    """A PNG with a colour map (PLTE) reads as RGB."""
    path = tmp_path / "palette.png"
    pyvips.Image.new_from_array(PALETTE[INDICES]).copy(interpretation="srgb").pngsave(
        str(path), palette=True, dither=0
    )
    assert pyvips.Image.pngload(str(path)).get("palette") == 1
    data, _ = read_all(path)
    assert (data == PALETTE[INDICES]).all()


def cyan_cmyk(path: Path) -> None:
    """Pure cyan (C=100 %, M=Y=K=0) as a CMYK JPEG or TIFF, by extension."""
    cmyk = np.zeros((32, 40, 4), np.uint8)
    cmyk[..., 0] = 255
    if path.suffix == ".tif":
        tifffile.imwrite(path, cmyk, photometric="separated")
    else:
        pyvips.Image.new_from_array(cmyk).copy(interpretation="cmyk").jpegsave(str(path), Q=95)


@pytest.mark.parametrize("name", ["cyan.jpg", "cyan.tif"])
def test_cmyk_to_rgb(tmp_path: Path, name: str) -> None:
    """CMYK JPEGs and TIFFs read as RGB; pure cyan stays cyan (no red, green and blue high)."""
    path = tmp_path / name
    cyan_cmyk(path)
    data, _ = read_all(path)
    assert data.shape == (32, 40, 3)
    red, green, blue = (int(v) for v in np.median(data.reshape(-1, 3), axis=0))
    assert red < 40 and green > 120 and blue > 180


def grey_alpha_16(path: Path) -> None:
    """16-bit grey plus alpha as a PNG or TIFF, by extension."""
    pixels = np.stack([GREY16, np.full_like(GREY16, 40000)], axis=-1)
    if path.suffix == ".tif":
        tifffile.imwrite(path, pixels, photometric="minisblack", extrasamples=[2])
    else:
        pyvips.Image.new_from_array(pixels).copy(interpretation="grey16").pngsave(str(path))


@pytest.mark.parametrize("name", ["grey-alpha.png", "grey-alpha.tif"])
def test_grey_alpha_16(tmp_path: Path, name: str) -> None:
    """Grey plus alpha at 16 bits is one 16-bit channel, the alpha noted as ignored."""
    path = tmp_path / name
    grey_alpha_16(path)
    data, notes = read_all(path)
    assert data.dtype == np.uint16 and (data[..., 0] == GREY16).all() and data.shape[-1] == 1
    assert notes["alpha"] == "ignored"
    assert "samples_ignored" not in notes


def lossless_tiff(path: Path, data: np.ndarray, compression: str) -> Path:
    """A tiled TIFF of ``data`` compressed losslessly with JPEG 2000 or JPEG XL (imagecodecs)."""
    args = {"jpeg2000": {"reversible": True}, "jpegxl": {"lossless": True}}[compression]
    photometric = "rgb" if data.ndim == 3 else "minisblack"
    tifffile.imwrite(
        path,
        data,
        photometric=photometric,
        compression=compression,
        compressionargs=args,
        tile=(32, 32),
    )
    return path


@pytest.mark.parametrize("compression", ["jpeg2000", "jpegxl"])
@pytest.mark.parametrize("pixels", [RGB, GREY16], ids=["rgb8", "grey16"])
def test_jpeg2000_and_jpegxl_tiff(tmp_path: Path, compression: str, pixels: np.ndarray) -> None:
    """JPEG 2000 and JPEG XL pages are decoded by tifffile (libvips would draw them black)."""
    path = lossless_tiff(tmp_path / "codec.tif", pixels, compression)
    data, _ = read_all(path)
    assert data.dtype == pixels.dtype
    assert (data == pixels.reshape(data.shape)).all()


def old_jpeg_tiff(path: Path, rgb: np.ndarray, interchange: bool = True) -> Path:
    """A TIFF with old-style JPEG compression (6): one strip that is a whole JFIF stream, named
    by JPEGInterchangeFormat as old scanners and Photoshop wrote it (no writer makes these now).
    """
    jpeg = (
        pyvips.Image.new_from_array(rgb)
        .copy(interpretation="srgb")
        .jpegsave_buffer(Q=100, subsample_mode="off")
    )
    height, width = rgb.shape[:2]
    count = 11 if interchange else 9
    bits_at = 8 + 2 + 12 * count + 4
    data_at = bits_at + 6
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, 3, bits_at),
        (259, 3, 1, 6),
        (262, 3, 1, 6),
        (273, 4, 1, data_at),
        (277, 3, 1, 3),
        (278, 3, 1, height),
        (279, 4, 1, len(jpeg)),
        (513, 4, 1, data_at),
        (514, 4, 1, len(jpeg)),
    ][:count]
    ifd = b"".join(
        # little-endian: a SHORT value sits in the first two bytes of the 4-byte field
        struct.pack("<HHII", tag, kind, n, value)
        for tag, kind, n, value in entries
    )
    header = b"II*\x00" + struct.pack("<IH", 8, count) + ifd + struct.pack("<I3H", 0, 8, 8, 8)
    path.write_bytes(header + jpeg)
    return path


def test_old_style_jpeg_tiff(tmp_path: Path) -> None:
    """Old-style JPEG (compression 6) with its JPEG stream named in the header reads as RGB."""
    rgb = np.zeros((16, 24, 3), np.uint8)
    rgb[..., 0], rgb[8:, :, 2] = 200, 150
    path = old_jpeg_tiff(tmp_path / "ojpeg.tif", rgb)
    assert tifffile.TiffFile(path).pages.first.compression == 6
    data, _ = read_all(path)
    assert np.abs(data.astype(int) - rgb).max() <= 4


def test_old_style_jpeg_without_stream_is_refused(tmp_path: Path) -> None:
    """Old-style JPEG whose tables are not an embedded JFIF stream: a reason and what to do."""
    path = old_jpeg_tiff(tmp_path / "ojpeg.tif", np.zeros((16, 24, 3), np.uint8), False)
    with pytest.raises(UnsupportedFormat, match="old-style JPEG") as caught:
        open_source(path)
    assert "Re-save it as a TIFF with LZW, Deflate or (new-style) JPEG" in str(caught.value)


def test_unknown_compression_is_refused(tmp_path: Path) -> None:
    """A compression no decoder here knows (ThunderScan, 32809) names itself and the way out."""
    path = tmp_path / "thunder.tif"
    tifffile.imwrite(path, GREY16)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        at = tif.pages.first.tags["Compression"].valueoffset
    data[at : at + 2] = struct.pack("<H", 32809)
    path.write_bytes(bytes(data))
    with pytest.raises(UnsupportedFormat) as caught:
        open_source(path)
    assert "(TIFF compression 32809). Re-save it as a TIFF with LZW" in str(caught.value)


@pytest.mark.parametrize("pixels", [RGB, GREY16], ids=["rgb8", "grey16"])
def test_bigtiff_tiled(tmp_path: Path, pixels: np.ndarray) -> None:
    """A tiled BigTIFF reads like a classic TIFF."""
    path = tmp_path / "big.tif"
    photometric = "rgb" if pixels.ndim == 3 else "minisblack"
    tifffile.imwrite(path, pixels, bigtiff=True, tile=(16, 16), photometric=photometric)
    assert path.read_bytes()[:4] == b"II+\x00"
    data, _ = read_all(path)
    assert (data == pixels.reshape(data.shape)).all()


CONVERTED: dict[str, Callable[[Path], Path]] = {
    "bilevel-g4": lambda tmp: bilevel_tiff(tmp / "fax.tif", "ccittfax4", True),
    "jpeg2000-rgb": lambda tmp: lossless_tiff(tmp / "j2k.tif", SMOOTH, "jpeg2000"),
    "old-jpeg": lambda tmp: old_jpeg_tiff(tmp / "ojpeg.tif", SMOOTH),
}


@pytest.mark.parametrize("kind", list(CONVERTED))
def test_convert(storage: Storage, tmp_path: Path, kind: str) -> None:
    """A full conversion of the file: ready, the right size, and the picture's pixels."""
    path = CONVERTED[kind](tmp_path)
    image_id = store_original(storage, path.read_bytes(), path.name)
    manifest = convert_image(storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    assert manifest.status == "ready", manifest.error
    expected = (WHITE * 255).astype(np.uint8)[..., None] if kind == "bilevel-g4" else SMOOTH
    assert (manifest.width, manifest.height) == (expected.shape[1], expected.shape[0])
    level = max(1, expected.shape[0], expected.shape[1]).bit_length() - 1
    level += 0 if max(expected.shape[:2]) == 1 << level else 1
    tile = decode(read_tile(storage, manifest, level, 0, 0))
    if kind == "bilevel-g4":
        assert (tile[..., 0] > 127).tolist() == WHITE.tolist()
    else:
        assert np.abs(tile[..., :3].astype(int) - expected).mean() < 3
