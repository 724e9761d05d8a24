"""Plain TIFF: equal-size pages as channels, interleaved samples, data types, RGB, planar data."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers import open_source
from tests.core.readers.files import pattern

H, W = 40, 56
DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"]


def channels_of(path: Path) -> list[np.ndarray]:
    """Every channel of ``path`` decoded to numpy."""
    with open_source(path) as source:
        return [source.channel(i).numpy() for i in range(len(source.channels))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["pages", "interleaved"])
def test_data_types(tmp_path: Path, dtype: str, layout: str) -> None:
    stack = np.stack([pattern(H, W, seed, dtype) for seed in range(3)])
    path = tmp_path / f"{dtype}.tif"
    if layout == "pages":
        tifffile.imwrite(path, stack, photometric="minisblack", metadata=None)
    else:
        data = stack.transpose(1, 2, 0)
        tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig")
    with open_source(path) as source:
        assert (source.width, source.height, source.dtype) == (W, H, dtype)
        assert [c.name for c in source.channels] == ["Channel 1", "Channel 2", "Channel 3"]
        assert [c.color for c in source.channels] == [None] * 3
        for i in range(3):
            pixels = source.channel(i).numpy()
            assert pixels.dtype == np.dtype(dtype)
            assert pixels[3, 4] == stack[i, 3, 4]
            np.testing.assert_array_equal(pixels, stack[i])


def test_float_nan_and_infinity_are_preserved(tmp_path: Path) -> None:
    data = pattern(H, W, 1, "float32")
    data[0, 0], data[1, 1], data[2, 2] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, data)
    (pixels,) = channels_of(path)
    assert np.isnan(pixels[0, 0]) and pixels[1, 1] == np.inf and pixels[2, 2] == -np.inf
    np.testing.assert_array_equal(pixels, data)


def test_pages_of_another_size_are_not_channels(tmp_path: Path) -> None:
    planes = [pattern(H, W, seed) for seed in range(3)]
    path = tmp_path / "thumb.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(planes[0], photometric="minisblack", metadata=None)
        tif.write(np.zeros((10, 14), np.uint16), photometric="minisblack", metadata=None)
        for plane in planes[1:]:
            tif.write(plane, photometric="minisblack", metadata=None)
    with open_source(path) as source:
        assert len(source.channels) == 3
        assert source.notes["pages_ignored"] == [1]
        for i in range(3):
            np.testing.assert_array_equal(source.channel(i).numpy(), planes[i])


@pytest.mark.parametrize(
    "options", [{"tile": (16, 16)}, {"rowsperstrip": 7}, {"compression": "zlib"}]
)
def test_interleaved_eight_samples(tmp_path: Path, options: dict[str, object]) -> None:
    data = np.stack([pattern(H, W, seed) for seed in range(8)], axis=-1)
    path = tmp_path / "eight.tif"
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig", **options)  # type: ignore[arg-type]
    decoded = channels_of(path)
    assert len(decoded) == 8
    for i in (0, 5, 7):
        np.testing.assert_array_equal(decoded[i], data[:, :, i])


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_rgb_photograph_is_rgb(tmp_path: Path, dtype: str) -> None:
    rgb = np.stack([pattern(H, W, seed, dtype) for seed in range(3)], axis=-1)
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, rgb, photometric="rgb", planarconfig="contig", tile=(16, 16))
    with open_source(path) as source:
        assert source.is_rgb and source.dtype == dtype
        assert [(c.name, c.color) for c in source.channels] == [
            ("Red", "#ff0000"),
            ("Green", "#00ff00"),
            ("Blue", "#0000ff"),
        ]
        np.testing.assert_array_equal(source.channel(2).numpy(), rgb[:, :, 2])


def test_rgba_drops_alpha(tmp_path: Path) -> None:
    rgba = np.stack([pattern(H, W, seed, "uint8") for seed in range(4)], axis=-1)
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(
        path, rgba, photometric="rgb", planarconfig="contig", extrasamples=["unassalpha"]
    )
    with open_source(path) as source:
        assert source.is_rgb and len(source.channels) == 3
        np.testing.assert_array_equal(source.channel(0).numpy(), rgba[:, :, 0])


@pytest.mark.parametrize(
    "options",
    [{}, {"rowsperstrip": 8}, {"compression": "zlib"}, {"tile": (16, 16)}],
    ids=["one-strip", "strips", "compressed", "tiled"],
)
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_separate_planes(tmp_path: Path, options: dict[str, object], byteorder: str) -> None:
    planes = np.stack([pattern(H, W, seed) for seed in range(4)])
    path = tmp_path / "planar.tif"
    tifffile.imwrite(
        path,
        planes,
        photometric="minisblack",
        planarconfig="separate",
        byteorder=byteorder,
        **options,  # type: ignore[arg-type]
    )
    with open_source(path) as source:
        assert len(source.channels) == 4 and source.notes["planar"] == "separate"
        for i in range(4):
            np.testing.assert_array_equal(source.channel(i).numpy(), planes[i])


def test_separate_rgb_planes(tmp_path: Path) -> None:
    planes = np.stack([pattern(H, W, seed, "uint8") for seed in range(3)])
    path = tmp_path / "rgb-planar.tif"
    tifffile.imwrite(path, planes, photometric="rgb", rowsperstrip=4)  # tifffile: separate planes
    with open_source(path) as source:
        assert source.is_rgb
        np.testing.assert_array_equal(source.channel(1).numpy(), planes[1])


def test_imagej_hyperstack_takes_first_plane(tmp_path: Path) -> None:
    stack = np.zeros((3, 2, 12, 16), np.uint16)  # Z, C, Y, X
    for z in range(3):
        for c in range(2):
            stack[z, c] = 10 * c + z + 1
    path = tmp_path / "hyper.tif"
    ramp = np.arange(256, dtype=np.uint8)
    green = np.stack([ramp * 0, ramp, ramp * 0])
    magenta = np.stack([ramp, ramp * 0, ramp])
    metadata = {"axes": "ZCYX", "unit": "um", "LUTs": [green, magenta]}
    tifffile.imwrite(path, stack, imagej=True, resolution=(2.0, 2.0), metadata=metadata)
    with open_source(path) as source:
        assert len(source.channels) == 2
        assert [int(source.channel(c).max()) for c in range(2)] == [1, 11]
        assert [c.color for c in source.channels] == ["#00ff00", "#ff00ff"]
        assert source.notes | {"z": 0, "z_planes": 3} == source.notes
        assert source.physical_size == (0.5, 0.5, "µm")


def test_resolution_in_centimetres_is_a_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "res.tif"
    tifffile.imwrite(
        path, np.zeros((8, 8), np.uint16), resolution=(40000, 40000), resolutionunit="CENTIMETER"
    )
    with open_source(path) as source:
        assert source.physical_size == pytest.approx((0.25, 0.25, "µm"))


def test_screen_resolution_is_no_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "72dpi.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), resolution=(72, 72), resolutionunit="INCH")
    with open_source(path) as source:
        assert source.physical_size is None


def test_page_names_name_channels(tmp_path: Path) -> None:
    path = tmp_path / "named.tif"
    with tifffile.TiffWriter(path) as tif:
        for name in ("DAPI", "FITC"):
            tif.write(
                np.zeros((8, 8), np.uint16), metadata=None, extratags=[(285, "s", 0, name, True)]
            )
    with open_source(path) as source:
        assert [c.name for c in source.channels] == ["DAPI", "FITC"]


def test_64bit_integers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "int64.tif"
    tifffile.imwrite(path, np.zeros((8, 8), np.int64))
    with pytest.raises(UnsupportedFormat, match=r"64-bit"):
        open_source(path)


def test_damaged_header_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint16))
    path.write_bytes(b"II*\x00" + b"\xff\xff\xff\x7f" + b"\x00" * 8)
    with pytest.raises(CorruptImage, match="could not be decoded"):
        open_source(path)


def test_each_call_gives_a_fresh_streaming_image(tmp_path: Path) -> None:
    stack = np.stack([pattern(H, W, seed) for seed in range(2)])
    path = tmp_path / "twice.tif"
    tifffile.imwrite(path, stack, photometric="minisblack", tile=(16, 16))
    with open_source(path) as source:
        # A sequential image is read once; the statistics pass and the pyramid pass each call.
        first, second = source.channel(1).avg(), source.channel(1).avg()
        assert first == second == pytest.approx(stack[1].mean())


@pytest.mark.parametrize("layout", ["pages", "interleaved", "two samples a page"])
@pytest.mark.parametrize("indices", [[0, 1, 2, 3, 4, 5], [1, 2, 4], [5, 0], [3]])
def test_bands_are_the_channels_asked_for(tmp_path: Path, layout: str, indices: list[int]) -> None:
    """bands(indices) holds exactly those channels in that order, whole pages or parts."""
    planes = np.stack([pattern(H, W, seed, "uint16") for seed in range(6)])
    path = tmp_path / "six.tif"
    if layout == "pages":
        tifffile.imwrite(path, planes, photometric="minisblack", metadata=None)
    elif layout == "interleaved":
        tifffile.imwrite(path, np.moveaxis(planes, 0, -1), photometric="minisblack",
                         planarconfig="contig", metadata=None)  # fmt: skip
    else:
        with tifffile.TiffWriter(path) as tif:
            for pair in range(3):
                two = np.moveaxis(planes[2 * pair : 2 * pair + 2], 0, -1)
                tif.write(two, photometric="minisblack", planarconfig="contig", metadata=None)
    with open_source(path) as source:
        got = np.asarray(source.bands(indices).numpy()).reshape(H, W, len(indices))
    assert np.array_equal(np.moveaxis(got, -1, 0), planes[indices])
