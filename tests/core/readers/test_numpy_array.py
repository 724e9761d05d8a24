"""NumPy .npy: memory-mapped H x W x C and C x H x W cubes, byte orders, refusals."""

from pathlib import Path

import numpy as np
import pytest

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers import ReadOptions, open_source

H, W, BANDS = 48, 64, 31


@pytest.fixture
def cube() -> np.ndarray:
    """A 31-band uint16 cube, H x W x C, each band distinct."""
    rng = np.random.default_rng(3)
    return rng.integers(0, 65535, (H, W, BANDS), dtype=np.uint16)


@pytest.mark.parametrize(
    ("layout", "arrange"),
    [
        ("HWC", lambda a: a),
        ("CHW", lambda a: a.transpose(2, 0, 1)),
        ("HWC", np.asfortranarray),
        ("CHW", lambda a: np.asfortranarray(a.transpose(2, 0, 1))),
        ("HWC", lambda a: a.astype(">u2")),
    ],
    ids=["hwc", "chw", "hwc-fortran", "chw-fortran", "big-endian"],
)
def test_cube_layouts(tmp_path: Path, cube: np.ndarray, layout: str, arrange) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cube.npy"
    np.save(path, arrange(cube))
    with open_source(path) as source:
        assert (source.width, source.height, source.dtype) == (W, H, "uint16")
        assert len(source.channels) == BANDS and source.channels[4].name == "Channel 5"
        assert source.notes["layout"] == layout
        for band in (0, 17, 30):
            pixels = source.channel(band).numpy()
            assert pixels[1, 2] == cube[1, 2, band]
            np.testing.assert_array_equal(pixels, cube[:, :, band])


def test_planes_are_not_copied(tmp_path: Path, cube: np.ndarray) -> None:
    path = tmp_path / "chw.npy"
    np.save(path, np.ascontiguousarray(cube.transpose(2, 0, 1)))
    with open_source(path) as source:
        image = source.channel(5)
        assert image.get("width") == W  # a view of the memory map, decoded on demand
        np.testing.assert_array_equal(image.numpy(), cube[:, :, 5])


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "uint32", "float32", "float64"])
def test_data_types(tmp_path: Path, dtype: str) -> None:
    data = (np.arange(H * W).reshape(H, W) % 120 - 60).astype(dtype)
    path = tmp_path / "plane.npy"
    np.save(path, data)
    with open_source(path) as source:
        assert source.dtype == dtype and len(source.channels) == 1
        np.testing.assert_array_equal(source.channel(0).numpy(), data)


def test_float_nan_is_preserved(tmp_path: Path) -> None:
    data = np.ones((H, W), np.float32)
    data[3, 4] = np.nan
    path = tmp_path / "nan.npy"
    np.save(path, data)
    with open_source(path) as source:
        pixels = source.channel(0).numpy()
        assert np.isnan(pixels[3, 4]) and pixels[0, 0] == 1.0


def test_pickled_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedFormat, match="pickle"):
        open_source(path)


def test_64bit_integers_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "int64.npy"
    np.save(path, np.zeros((4, 4), np.int64))
    with pytest.raises(UnsupportedFormat, match="int64"):
        open_source(path)


def test_truncated_file_is_corrupt(tmp_path: Path, cube: np.ndarray) -> None:
    path = tmp_path / "cut.npy"
    np.save(path, cube)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptImage, match="truncated"):
        open_source(path)


@pytest.mark.parametrize("layout", ["HWC", "CHW"])
def test_layout_option_settles_ambiguous_shapes(tmp_path: Path, layout: str) -> None:
    data = np.arange(20 * 24 * 30, dtype=np.uint16).reshape(20, 24, 30)
    path = tmp_path / "ambiguous.npy"
    np.save(path, data)
    with open_source(path, ReadOptions(array_layout=layout)) as source:
        expected = data[:, :, 1] if layout == "HWC" else data[1]
        assert len(source.channels) == (30 if layout == "HWC" else 20)
        np.testing.assert_array_equal(source.channel(1).numpy(), expected)


def test_four_dimensional_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "4d.npy"
    np.save(path, np.zeros((2, 3, 4, 5), np.uint8))
    with pytest.raises(UnsupportedFormat, match=r"shape \(2, 3, 4, 5\)"):
        open_source(path)
