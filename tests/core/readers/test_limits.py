"""Header limits: every reader refuses, before decoding, what exceeds the configured limits."""

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
import pyvips
import scipy.io
import tifffile

from plexzoom.core.errors import CorruptImage, ImageTooLarge
from plexzoom.core.readers import ReadOptions, open_source
from tests.core.readers.files import write_mat73
from tests.core.readers.hostile import (
    jpeg_claiming,
    png_claiming,
    tiff_claiming,
    tiff_with_absurd_counts,
)

# How fast these refusals are is measured by bench/hostile.py, not timed here: each file below
# holds a header and little or no pixel data, so only a check of the header can name its size.
H, W, C = 30, 40, 3


def _stack() -> np.ndarray:
    """A 30 x 40 x 3 uint16 stack, H x W x C."""
    return np.random.default_rng(5).integers(0, 65535, (H, W, C), dtype=np.uint16)


def _tiff(path: Path) -> None:
    tifffile.imwrite(path, _stack().transpose(2, 0, 1), photometric="minisblack")


def _png(path: Path) -> None:
    image = pyvips.Image.new_from_array(_stack()).copy(interpretation="rgb16")
    image.pngsave(str(path))


def _npy(path: Path) -> None:
    np.save(path, _stack())


def _mat5(path: Path) -> None:
    scipy.io.savemat(path, {"img": _stack()})


def _mat73(path: Path) -> None:
    write_mat73(path, {"img": _stack()})


def _hdf5(path: Path) -> None:
    with h5py.File(path, "w") as file:
        file.create_dataset("img", data=_stack())


WRITERS: dict[str, Callable[[Path], None]] = {
    "tiff": _tiff,
    "png": _png,
    "npy": _npy,
    "mat5": _mat5,
    "mat73": _mat73,
    "hdf5": _hdf5,
}
# One limit just below the 40 x 30 x 3 uint16 stack, and the words of its refusal.
LIMITS = {
    "width": ({"max_width": W - 1}, r"40 x 30 pixels; this server accepts at most 39 x"),
    "height": ({"max_height": H - 1}, r"40 x 30 pixels; this server accepts at most \d+ x 29"),
    "pixels": ({"max_pixels": W * H - 1}, r"= 1,200 pixels; this server accepts at most 1,199"),
    "channels": ({"max_channels": C - 1}, r"3 channels; this server accepts at most 2"),
    "bytes": ({"max_bytes_per_pixel": 2 * C - 1}, r"\(6 bytes\); this server accepts at most 5"),
}


@pytest.mark.parametrize("fmt", WRITERS)
@pytest.mark.parametrize("limit", LIMITS)
def test_each_limit_is_checked_by_each_reader(tmp_path: Path, fmt: str, limit: str) -> None:
    """A limit one below the image refuses it with the figures; at the image's size it opens."""
    path = tmp_path / f"stack.{fmt}"
    WRITERS[fmt](path)
    below, words = LIMITS[limit]
    with pytest.raises(ImageTooLarge, match=words):
        open_source(path, ReadOptions(**below))  # type: ignore[arg-type]
    at = {name: value + 1 for name, value in below.items()}
    with open_source(path, ReadOptions(**at)) as source:  # type: ignore[arg-type]
        assert (source.width, source.height, len(source.channels)) == (W, H, C)


def _npy_claiming(path: Path) -> None:
    """A .npy header for a 200000 x 200000 uint8 array, and no data."""
    with path.open("wb") as file:
        header = {"descr": "|u1", "fortran_order": False, "shape": (200_000, 200_000)}
        np.lib.format.write_array_header_1_0(file, header)


def _hdf5_claiming(path: Path) -> None:
    """An HDF5 dataset declared 200000 x 200000 (chunked, nothing written: a tiny file)."""
    with h5py.File(path, "w") as file:
        file.create_dataset("img", shape=(200_000, 200_000), dtype="u1", chunks=(256, 256))


CLAIMS: dict[str, Callable[[Path], None]] = {
    "png": lambda p: p.write_bytes(png_claiming(200_000, 200_000)),
    "tiff-strip": lambda p: p.write_bytes(tiff_claiming(200_000, 200_000)),
    "tiff-tiled": lambda p: p.write_bytes(tiff_claiming(200_000, 200_000, tiled=True)),
    "npy": _npy_claiming,
    "hdf5": _hdf5_claiming,
}


@pytest.mark.parametrize("kind", CLAIMS)
def test_a_header_claiming_200000_squared_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """Refused from the header (the file has no pixel data), naming the size and the limit."""
    path = tmp_path / "claim"
    CLAIMS[kind](path)
    assert path.stat().st_size < 10_000
    with pytest.raises(ImageTooLarge, match=r"200000 x 200000 = 40,000,000,000 pixels"):
        open_source(path)


@pytest.mark.parametrize("tiled", [False, True], ids=["strip", "tile"])
def test_tiff_data_past_the_end_of_the_file_is_corrupt(tmp_path: Path, tiled: bool) -> None:
    """Strip or tile offsets far past the end of the file are refused from the header."""
    path = tmp_path / "offsets.tif"
    path.write_bytes(tiff_claiming(256, 256, data_offset=0xFFFF_FF00, tiled=tiled))
    with pytest.raises(CorruptImage, match=r"truncated or damaged"):
        open_source(path)


def test_tiff_strip_tables_of_a_billion_entries_are_corrupt(tmp_path: Path) -> None:
    """Strip tables whose counts run past the file leave no data offsets: refused at once."""
    path = tmp_path / "counts.tif"
    path.write_bytes(tiff_with_absurd_counts())
    with pytest.raises(CorruptImage, match=r"does not say where its image data is"):
        open_source(path)


def test_the_hand_built_tiff_is_a_valid_tiff(tmp_path: Path) -> None:
    """The builder above writes real TIFFs: with honest offsets the pixels read back."""
    path = tmp_path / "honest.tif"
    path.write_bytes(tiff_claiming(8, 8))
    with open_source(path) as source:
        assert source.channel(0).avg() == 0x80


def test_a_jpeg_claiming_a_huge_size_fails_on_its_missing_data(tmp_path: Path) -> None:
    """16 x 16 pixels of data under a 65500 x 65500 header (within limits) fails at once."""
    path = tmp_path / "claim.jpg"
    path.write_bytes(jpeg_claiming(65_500, 65_500))
    with open_source(path) as source:
        assert (source.width, source.height) == (65_500, 65_500)
        with pytest.raises(pyvips.Error, match="premature end of data"):
            source.channel(0).avg()
