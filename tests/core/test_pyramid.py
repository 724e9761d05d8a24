"""Zip pyramids with a byte-range tile index: every tile where the index says, sized per DZI."""

import io
import math
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core.errors import CorruptImage
from plexzoom.core.pyramid import PyramidOptions, TileIndex, build_pyramid, level_sizes
from tests.conftest import decode, noise_image

DZI_NS = "{http://schemas.microsoft.com/deepzoom/2008}"
WIDTH, HEIGHT = 1100, 700


def gradient_array(width: int, height: int) -> np.ndarray:
    """Red rises left to right, green top to bottom: a misplaced tile shows in its colours."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return np.dstack([x, y, np.full_like(x, 128)]).round().astype(np.uint8)


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    """The pixels every pyramid in this module is built from."""
    return gradient_array(WIDTH, HEIGHT)


def tile_box(level_size: tuple[int, int], tile_size: int, overlap: int, col: int, row: int):
    """(x0, y0, x1, y1) a DZI tile covers: its cell plus overlap on inner sides, clipped."""
    width, height = level_size
    x0 = col * tile_size - (overlap if col > 0 else 0)
    y0 = row * tile_size - (overlap if row > 0 else 0)
    x1 = min((col + 1) * tile_size + overlap, width)
    y1 = min((row + 1) * tile_size + overlap, height)
    return x0, y0, x1, y1


def _build(source: np.ndarray, tmp_path: Path, options: PyramidOptions) -> tuple[Path, TileIndex]:
    image = pyvips.Image.new_from_array(source, interpretation="srgb")
    archive = tmp_path / "image.zip"
    return archive, build_pyramid(image, archive, options)


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
@pytest.mark.parametrize("overlap", [0, 1, 2])
@pytest.mark.parametrize("tile_size", [254, 256, 510])
def test_every_tile_is_where_the_index_says_and_sized_per_dzi(
    source: np.ndarray, tmp_path: Path, tile_size: int, overlap: int, fmt: str
) -> None:
    """Index ranges hold exactly the zip members' bytes; each decodes to its DZI size."""
    options = PyramidOptions(tile_size=tile_size, overlap=overlap, format=fmt)
    archive, index = _build(source, tmp_path, options)
    sizes = level_sizes(WIDTH, HEIGHT)
    assert (index.width, index.height, index.tile_size, index.overlap, index.format) == (
        WIDTH,
        HEIGHT,
        tile_size,
        overlap,
        fmt,
    )
    assert len(index.levels) == len(sizes) == math.ceil(math.log2(WIDTH)) + 1
    raw = archive.read_bytes()
    with zipfile.ZipFile(archive) as zf:
        members = {i.filename for i in zf.infolist() if i.filename.endswith(f".{fmt}")}
        indexed = set()
        for level, (lw, lh) in enumerate(sizes):
            cols, rows = math.ceil(lw / tile_size), math.ceil(lh / tile_size)
            assert (index.levels[level]["cols"], index.levels[level]["rows"]) == (cols, rows)
            for row in range(rows):
                for col in range(cols):
                    name = f"image_files/{level}/{col}_{row}.{fmt}"
                    where = index.tile_range(level, col, row)
                    assert where is not None
                    offset, length = where
                    assert length > 0
                    assert raw[offset : offset + length] == zf.read(name), name
                    x0, y0, x1, y1 = tile_box((lw, lh), tile_size, overlap, col, row)
                    pixels = decode(raw[offset : offset + length])
                    assert pixels.shape == (y1 - y0, x1 - x0, 3), name
                    indexed.add(name)
        assert indexed == members, "the zip holds tiles the index does not know"
    _check_full_resolution_pixels(source, raw, index, lossless=fmt == "png")


def _check_full_resolution_pixels(
    source: np.ndarray, raw: bytes, index: TileIndex, lossless: bool
) -> None:
    """Tiles of the top level are crops of the source at their own position."""
    top = index.max_level
    entry = index.levels[top]
    for row in range(entry["rows"]):
        for col in range(entry["cols"]):
            offset, length = index.tile_range(top, col, row) or (0, 0)
            x0, y0, x1, y1 = tile_box((WIDTH, HEIGHT), index.tile_size, index.overlap, col, row)
            got = decode(raw[offset : offset + length]).astype(int)
            want = source[y0:y1, x0:x1].astype(int)
            if lossless:
                assert np.array_equal(got, want), (col, row)
            else:
                assert np.abs(got - want).mean() < 3, (col, row)


def test_webp_tiles(tmp_path: Path) -> None:
    """WebP is a tile format too; its tiles are indexed and decode as WebP."""
    image = noise_image(600, 300)
    index = build_pyramid(image, tmp_path / "image.zip", PyramidOptions(format="webp"))
    offset, length = index.tile_range(index.max_level, 2, 1) or (0, 0)
    data = (tmp_path / "image.zip").read_bytes()[offset : offset + length]
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def _tile(archive: Path, index: TileIndex, col: int, row: int) -> bytes:
    offset, length = index.tile_range(index.max_level, col, row) or (0, 0)
    return archive.read_bytes()[offset : offset + length]


def _metadata_markers(jpeg: bytes) -> list[str]:
    """APPn segments (EXIF, XMP, ICC) before the image data of a JPEG."""
    found, at = [], 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and jpeg[at + 1] != 0xDA:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if 0xE1 <= marker <= 0xEF:  # APP0 (JFIF) carries no metadata
            found.append(f"APP{marker - 0xE0}")
        at += 2 + length
    return found


def _with_metadata(image: pyvips.Image) -> pyvips.Image:
    """``image`` carrying EXIF and an sRGB ICC profile, as a camera or scanner writes them."""
    tagged = pyvips.Image.new_from_buffer(image.jpegsave_buffer(profile="srgb"), "")
    tagged = tagged.copy()
    tagged.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "Jane Patient (Jane Patient)")
    return tagged


def test_jpeg_tiles_carry_no_metadata_and_the_configured_quality(tmp_path: Path) -> None:
    """Tiles hold no EXIF, XMP or profile from the original (names can hide there), and the
    quality is the configured one."""
    image = _with_metadata(noise_image(600, 300))
    sizes = {}
    for quality in (40, 95):
        archive = tmp_path / f"q{quality}.zip"
        index = build_pyramid(image, archive, PyramidOptions(quality=quality))
        tile = _tile(archive, index, 1, 0)
        assert _metadata_markers(tile) == []
        sizes[quality] = len(tile)
    assert sizes[40] < sizes[95] * 0.7


def test_the_metadata_check_sees_metadata(tmp_path: Path) -> None:
    """The check above can fail: tiles libvips writes keeping metadata show it."""
    image = _with_metadata(noise_image(600, 300))
    image.dzsave(str(tmp_path / "kept.zip"), container="zip", compression=0, Q=85, keep="all")
    with zipfile.ZipFile(tmp_path / "kept.zip") as zf:
        tile = zf.read(next(n for n in zf.namelist() if n.endswith("/1_0.jpeg")))
    assert "APP1" in _metadata_markers(tile) or "APP2" in _metadata_markers(tile)


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1, 1, [(1, 1)]),
        (2, 1, [(1, 1), (2, 1)]),
        (3, 3, [(1, 1), (2, 2), (3, 3)]),
        (1024, 512, [(2**i, max(1, 2 ** (i - 1))) for i in range(11)]),
        (1025, 3, [*((math.ceil(1025 / 2**k), 1) for k in range(11, 1, -1)), (513, 2), (1025, 3)]),
        (600, 300, [(1, 1), (2, 1), (3, 2), (5, 3), (10, 5), (19, 10), (38, 19), (75, 38),
                    (150, 75), (300, 150), (600, 300)]),
    ],
)  # fmt: skip
def test_level_sizes_follow_deep_zoom(
    width: int, height: int, expected: list[tuple[int, int]]
) -> None:
    """Level L is the image scaled by 2**(L - max_level), rounded up; level 0 is 1 px across."""
    assert level_sizes(width, height) == expected


def test_tile_range_is_none_outside_the_pyramid(tmp_path: Path) -> None:
    """Levels, columns and rows beyond the pyramid (or negative) have no range."""
    index = build_pyramid(noise_image(600, 300), tmp_path / "image.zip", PyramidOptions())
    top = index.levels[-1]
    assert (top["cols"], top["rows"]) == (3, 2)
    assert index.tile_range(index.max_level, 2, 1) is not None
    for level, col, row in [
        (-1, 0, 0),
        (len(index.levels), 0, 0),
        (index.max_level, 3, 0),
        (index.max_level, 0, 2),
        (index.max_level, -1, 0),
        (index.max_level, 0, -1),
        (0, 1, 0),
        (0, 0, 1),
    ]:
        assert index.tile_range(level, col, row) is None, (level, col, row)


def test_the_index_round_trips_through_json(tmp_path: Path) -> None:
    """The stored index reads back equal, and is plain JSON with a version."""
    index = build_pyramid(noise_image(300, 200), tmp_path / "image.zip", PyramidOptions())
    assert TileIndex.from_json(index.to_json()) == index
    assert b'"version":1' in index.to_json()


@pytest.mark.parametrize(("tile_size", "overlap", "fmt"), [(254, 1, "jpeg"), (510, 0, "png")])
def test_dzi_xml_matches_the_pyramid_and_libvips(
    tmp_path: Path, tile_size: int, overlap: int, fmt: str
) -> None:
    """The .dzi descriptor parses, names the pyramid's geometry and agrees with dzsave's own."""
    options = PyramidOptions(tile_size=tile_size, overlap=overlap, format=fmt)
    archive = tmp_path / "image.zip"
    index = build_pyramid(noise_image(777, 333), archive, options)
    ours = ET.fromstring(index.dzi_xml().encode())
    assert ours.tag == f"{DZI_NS}Image"
    assert ours.attrib == {"Format": fmt, "Overlap": str(overlap), "TileSize": str(tile_size)}
    size = ours.find(f"{DZI_NS}Size")
    assert size is not None
    assert size.attrib == {"Width": "777", "Height": "333"}
    with zipfile.ZipFile(archive) as zf:
        theirs = ET.fromstring(zf.read("image.dzi"))
    assert theirs.attrib == ours.attrib
    their_size = theirs.find(f"{DZI_NS}Size")
    assert their_size is not None
    assert their_size.attrib == size.attrib


def test_progress_rises_to_the_end(tmp_path: Path) -> None:
    """The progress callback sees at least five values in 0..1 that never fall and get most of
    the way (libvips signals as it computes strips: a count set by the image, not the clock)."""
    seen: list[float] = []
    build_pyramid(noise_image(2000, 1500), tmp_path / "image.zip", PyramidOptions(), seen.append)
    assert len(set(seen)) >= 5, seen
    assert all(0 <= v <= 1 for v in seen)
    assert seen == sorted(seen)
    assert seen[-1] >= 0.5 > seen[0]


def test_tiles_are_stored_uncompressed(tmp_path: Path) -> None:
    """Every tile is a stored (not deflated) member, so its bytes are a plain range."""
    build_pyramid(noise_image(600, 300), tmp_path / "image.zip", PyramidOptions())
    with zipfile.ZipFile(tmp_path / "image.zip") as zf:
        tiles = [i for i in zf.infolist() if i.filename.endswith(".jpeg")]
        assert tiles
        assert {i.compress_type for i in tiles} == {zipfile.ZIP_STORED}


def test_a_truncated_file_raises_corrupt_image(tmp_path: Path) -> None:
    """A TIFF whose header survives but whose pixels are cut off is CorruptImage, not a crash."""
    out = io.BytesIO()
    tifffile.imwrite(out, gradient_array(800, 600), photometric="rgb", rowsperstrip=16)
    damaged = tmp_path / "damaged.tif"
    damaged.write_bytes(out.getvalue()[: len(out.getvalue()) // 2])
    image = pyvips.Image.new_from_file(str(damaged), access="sequential", fail_on="error")
    with pytest.raises(CorruptImage) as caught:
        build_pyramid(image, tmp_path / "image.zip", PyramidOptions())
    assert "truncated or damaged" in caught.value.message
