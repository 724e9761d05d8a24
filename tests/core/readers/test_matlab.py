"""MATLAB .mat v5 and v7.3 (HDF5): hyperspectral cubes, wavelengths, refusals."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from plexzoom.core.errors import UnsupportedFormat
from plexzoom.core.readers import ReadOptions, open_source
from tests.core.readers.files import write_mat73

H, W, BANDS = 30, 40, 31
WAVELENGTHS = np.linspace(400.0, 700.0, BANDS)


@pytest.fixture
def cube() -> np.ndarray:
    """A 31-band single-precision cube, H x W x C as MATLAB holds it, each band distinct."""
    rng = np.random.default_rng(7)
    data = rng.random((H, W, BANDS), dtype=np.float32)
    return data + np.arange(BANDS, dtype=np.float32)  # band b lies in [b, b + 1)


def write_v5(path: Path, variables: dict[str, object]) -> Path:
    """A MATLAB v5 (-v7, compressed) file."""
    scipy.io.savemat(path, variables, do_compression=True)
    return path


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_hyperspectral_cube_with_wavelengths(
    tmp_path: Path, cube: np.ndarray, version: str
) -> None:
    variables = {"cube": cube, "wavelength": WAVELENGTHS[np.newaxis, :], "note": np.zeros((1, 1))}
    path = tmp_path / "cube.mat"
    if version == "v5":
        write_v5(path, variables)
    else:
        write_mat73(path, variables)
    with open_source(path) as source:
        assert (source.width, source.height, source.dtype) == (W, H, "float32")
        assert len(source.channels) == BANDS
        assert [c.wavelength_nm for c in source.channels] == pytest.approx(list(WAVELENGTHS))
        assert source.channels[0].name == "400 nm" and source.channels[-1].name == "700 nm"
        assert source.notes["variable"] == "cube"
        for band in (0, 15, 30):
            pixels = source.channel(band).numpy()
            assert pixels[2, 3] == cube[2, 3, band]
            assert pixels[H - 1, 0] == cube[H - 1, 0, band]
            np.testing.assert_array_equal(pixels, cube[:, :, band])


def test_v73_file_is_stored_transposed(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_mat73(tmp_path / "cube.mat", {"cube": cube})
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path) as file:
        assert file["cube"].shape == (BANDS, W, H)


@pytest.mark.parametrize("version", ["v5", "v7.3"])
def test_named_variable_wins_over_the_largest(
    tmp_path: Path, cube: np.ndarray, version: str
) -> None:
    small = np.arange(12, dtype=np.uint16).reshape(3, 4)
    path = tmp_path / "two.mat"
    (write_v5 if version == "v5" else write_mat73)(path, {"cube": cube, "mask": small})
    with open_source(path, ReadOptions(variable="mask")) as source:
        assert (source.width, source.height, source.dtype) == (4, 3, "uint16")
        np.testing.assert_array_equal(source.channel(0).numpy(), small)
    with pytest.raises(UnsupportedFormat, match=r"no numeric image called 'missing'.*cube"):
        open_source(path, ReadOptions(variable="missing"))


def test_v5_cells_and_structs_are_refused_with_a_listing(tmp_path: Path) -> None:
    cells = np.empty((1, 3), dtype=object)
    cells[0, :] = [np.zeros(2), "text", np.ones(3)]
    path = write_v5(tmp_path / "cells.mat", {"a": cells, "s": {"x": np.ones((4, 4))}})
    with pytest.raises(UnsupportedFormat) as refused:
        open_source(path)
    message = refused.value.message
    assert "holds no numeric image" in message
    assert "a (cell 1x3)" in message and "s (struct 1x1)" in message


def test_v73_structs_and_cells_are_refused_with_a_listing(tmp_path: Path) -> None:
    path = write_mat73(tmp_path / "struct.mat", {"s": {"x": np.ones((4, 4))}})
    with h5py.File(path, "a") as file:
        refs = file.create_group("#refs#")
        refs["r0"] = np.zeros(3)
        cell = file.create_dataset("c", (1, 2), dtype=h5py.ref_dtype)
        cell[0, 0] = cell[0, 1] = refs["r0"].ref
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
    with pytest.raises(UnsupportedFormat, match=r"variables found: c \(cell 2x1\), s \(struct\)"):
        open_source(path)


@pytest.mark.parametrize("kind", ["external link", "external storage", "virtual dataset"])
def test_v73_with_data_in_other_files_is_refused(
    tmp_path: Path, cube: np.ndarray, kind: str
) -> None:
    path = write_mat73(tmp_path / "linked.mat", {"cube": cube})
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as file:
        file["data"] = np.ones((5, 5))
    with h5py.File(path, "a") as file:
        if kind == "external link":
            file["extra"] = h5py.ExternalLink(str(other), "/data")
        elif kind == "external storage":
            (tmp_path / "raw.bin").write_bytes(b"\x00" * 200)
            file.create_dataset("raw", (5, 5), "f8", external=[(str(tmp_path / "raw.bin"), 0, 200)])
        else:
            layout = h5py.VirtualLayout((5, 5), "f8")
            layout[:] = h5py.VirtualSource(str(other), "data", (5, 5))
            file.create_virtual_dataset("virtual", layout)
    with pytest.raises(UnsupportedFormat, match="points to data in other files"):
        open_source(path)


def test_plain_hdf5_channels_first(tmp_path: Path) -> None:
    stack = np.stack([np.full((12, 16), c, np.uint16) for c in range(5)])
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as file:
        file["image"] = stack
    with open_source(path) as source:
        assert source.notes["source_format"] == "hdf5"
        assert (source.width, source.height, len(source.channels)) == (16, 12, 5)
        assert int(source.channel(3).max()) == 3


def test_complex_arrays_are_refused(tmp_path: Path) -> None:
    path = write_v5(tmp_path / "complex.mat", {"z": np.ones((4, 5), complex)})
    with pytest.raises(UnsupportedFormat, match="complex"):
        open_source(path)


def test_matlab_4_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.mat"
    path.write_bytes(b"MATLAB 4 something" + b"\x00" * 200)
    with pytest.raises(UnsupportedFormat):
        open_source(path)


def test_memory_limit(tmp_path: Path, cube: np.ndarray) -> None:
    path = write_v5(tmp_path / "cube.mat", {"cube": cube})
    with pytest.raises(Exception, match="GiB of memory"):
        open_source(path, ReadOptions(max_in_memory_bytes=1000))
