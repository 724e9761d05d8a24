"""Writers for the generated test sources: OME-TIFF with hand-written XML, MATLAB v7.3, pixels."""

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyvips
import tifffile

OWN_UUID = "urn:uuid:00000000-0000-4000-8000-000000000001"
OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
# OME Color is a signed 32-bit RGBA integer.
OME_COLORS = {
    "#ff0000": -16776961,  # 0xFF0000FF
    "#00ff00": 16711935,  # 0x00FF00FF
    "#0000ff": 65535,  # 0x0000FFFF
    "#ffff00": -65281,  # 0xFFFF00FF
    "#ff00ff": -16711681,  # 0xFF00FFFF
}


def pattern(height: int, width: int, seed: int, dtype: str = "uint16") -> np.ndarray:
    """Distinct pseudo-random pixels covering much of the dtype's range."""
    rng = np.random.default_rng(seed)
    kind = np.dtype(dtype)
    if kind.kind == "f":
        return rng.normal(0, 1000, (height, width)).astype(kind)
    info = np.iinfo(kind)
    return rng.integers(info.min, info.max, (height, width), dtype=kind, endpoint=True)


def ome_xml(
    size: tuple[int, int],
    czt: tuple[int, int, int],
    order: str = "XYCZT",
    channels: str = "",
    tiff_data: str = "<TiffData/>",
    pixel_type: str = "uint16",
    extra: str = "",
) -> str:
    """A minimal current-schema OME-XML document for one image."""
    (width, height), (c, z, t) = size, czt
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="{OME_NS}" UUID="{OWN_UUID}">'
        f'{extra}<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="{order}" '
        f'Type="{pixel_type}" SizeX="{width}" SizeY="{height}" SizeC="{c}" SizeZ="{z}" '
        f'SizeT="{t}">{channels}{tiff_data}</Pixels></Image></OME>'
    )


def write_pages(path: Path, pages: list[np.ndarray], description: str, **options: Any) -> Path:
    """One TIFF page per array, ``description`` (OME-XML) on the first page only."""
    with tifffile.TiffWriter(path, bigtiff=bool(options.pop("bigtiff", False))) as writer:
        for index, page in enumerate(pages):
            writer.write(
                page,
                description=description if index == 0 else None,
                metadata=None,
                photometric="minisblack",
                **options,
            )
    return path


def write_mat73(path: Path, variables: dict[str, np.ndarray | dict[str, np.ndarray]]) -> Path:
    """Write a MATLAB v7.3 file the way MATLAB does: 512-byte header, arrays transposed."""
    with h5py.File(path, "w", userblock_size=512) as file:
        for name, value in variables.items():
            if isinstance(value, dict):
                group = file.create_group(name)
                group.attrs["MATLAB_class"] = np.bytes_("struct")
                for field, array in value.items():
                    dataset = group.create_dataset(field, data=array.T)
                    dataset.attrs["MATLAB_class"] = np.bytes_(_matlab_class(array))
                continue
            dataset = file.create_dataset(name, data=value.T, compression="gzip")
            dataset.attrs["MATLAB_class"] = np.bytes_(_matlab_class(value))
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5"
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with path.open("r+b") as file:
        file.write(header.ljust(512, b"\x00"))
    return path


def _matlab_class(array: np.ndarray) -> str:
    """MATLAB's class name for a numpy dtype."""
    names = {"float64": "double", "float32": "single", "bool": "logical"}
    return names.get(array.dtype.name, array.dtype.name)


def write_multipage(path: Path, width: int, height: int, pages: int) -> Path:
    """A large stripped multi-page uint16 TIFF written by libvips without holding it in memory."""
    xyz = pyvips.Image.xyz(width, height * pages)
    tall = ((xyz[0] + xyz[1] * 3) & 0xFFFF).cast("ushort")
    tall = tall.copy(interpretation="grey16")
    tall.set_type(pyvips.GValue.gint_type, "page-height", height)
    tall.tiffsave(str(path))
    return path
