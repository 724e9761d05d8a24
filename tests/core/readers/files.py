"""Writers for the generated test sources: OME-TIFF with hand-written XML, MATLAB v7.3, pixels."""

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyvips
import tifffile

OWN_UUID = "urn:uuid:00000000-0000-4000-8000-000000000001"
OME_NS = "http://www.openmicroscopy.org/Schemas/OME/2016-06"
OME_2008_NS = "http://www.openmicroscopy.org/Schemas/OME/2008-09"
# Bio-Formats' 2008 export names its own file by a bare UUID (no "urn:uuid:" prefix).
OWN_2008_UUID = "00000000-0000-4000-8000-000000002008"
_LSID = "urn:lsid:export.openmicroscopy.org"
_BIO_FORMATS_WARNING = (
    "<!-- Warning: this comment is an OME-XML metadata block, which contains crucial "
    "dimensional parameters and other important metadata. Please edit cautiously (if at all), "
    "and back up the original data before doing so. For more information, see the OME-TIFF web "
    "site: http://loci.wisc.edu/ome/ome-tiff.html. -->"
)
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
    bigtiff, byteorder = bool(options.pop("bigtiff", False)), options.pop("byteorder", None)
    with tifffile.TiffWriter(path, bigtiff=bigtiff, byteorder=byteorder) as writer:
        for index, page in enumerate(pages):
            writer.write(
                page,
                description=description if index == 0 else None,
                metadata=None,
                photometric="minisblack",
                **options,
            )
    return path


def ome_2008_xml(size: tuple[int, int], names: list[str | None], order: str = "XYCZT") -> str:
    """OME-XML of the 2008-09 schema as Bio-Formats wrote it: LogicalChannel under Image."""
    (width, height), uuid = size, OWN_2008_UUID
    channels = "".join(
        f'<LogicalChannel ID="{_LSID}:LogicalChannel:{index}"'
        + (f' Name="{name}"' if name is not None else "")
        + ' SamplesPerPixel="1"/>\n'
        for index, name in enumerate(names)
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{_BIO_FORMATS_WARNING}\n'
        f'<OME xmlns="{OME_2008_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'UUID="{uuid}">\n<Experimenter ID="{_LSID}:Experimenter:2"/>\n'
        f'<Group ID="{_LSID}:ExperimenterGroup:54"/>\n'
        f'<Image DefaultPixels="{_LSID}:Pixels:0" ID="{_LSID}:Image:0" Name="generated.tif">\n'
        "<CreationDate>2013-01-07 14:33:48.0</CreationDate>\n"
        f'<ExperimenterRef ID="{_LSID}:Experimenter:2"/>\n'
        "<Description>Generated stand-in.</Description>\n"
        f'<GroupRef ID="{_LSID}:ExperimenterGroup:54"/>\n'
        f'{channels}<Pixels BigEndian="true" DimensionOrder="{order}" ID="{_LSID}:Pixels:0" '
        f'PixelType="uint8" SizeC="{len(names)}" SizeT="1" SizeX="{width}" SizeY="{height}" '
        f'SizeZ="1">\n<TiffData>\n<UUID FileName="__omero_export__0.ome.tiff">{uuid}</UUID>\n'
        "</TiffData>\n</Pixels>\n</Image>\n</OME>"
    )


def write_2008_ome(
    path: Path, pages: list[np.ndarray], names: list[str | None], order: str = "XYCZT"
) -> Path:
    """A Bio-Formats 2008 OME-TIFF: big-endian, one uncompressed page per channel, 8-row strips."""
    height, width = pages[0].shape
    return write_pages(
        path,
        pages,
        ome_2008_xml((width, height), names, order),
        byteorder=">",
        rowsperstrip=8,
        compression=None,
        software="LOCI Bio-Formats",
        resolution=(1, 1),
        resolutionunit=1,
    )


def cells(height: int, width: int, seed: int, count: int = 100) -> np.ndarray:
    """Smooth uint8 fluorescence: soft round cells on a tilted background, using 0 to 255."""
    rng = np.random.default_rng(seed)
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    angle = rng.uniform(0, 2 * np.pi)
    field: np.ndarray = 40 * (1 + np.cos(angle) * xs / width + np.sin(angle) * ys / height)
    for _ in range(count):
        cy, cx, sigma = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(6, 45)
        along_y = np.exp(-((ys - cy) ** 2) / (2 * sigma**2))
        along_x = np.exp(-((xs - cx) ** 2) / (2 * sigma**2))
        field = field + rng.uniform(60, 200) * along_y * along_x
    # Like the seed samples, each channel spans 0..255: its default display window
    # (0.1th to 99.9th percentile) then leaves the values as they are.
    low, high = np.percentile(field, [1, 99.5])
    return ((field - low) * (255 / (high - low))).clip(0, 255).astype(np.uint8)


def sample_three_channels(path: Path) -> Path:
    """A stand-in for the seed sample 44153.tif: 954 x 1020, three uint8 pages Red/Green/Blue."""
    pages = [cells(1020, 954, seed) for seed in (441531, 441532, 441533)]
    return write_2008_ome(path, pages, ["Red", "Green", "Blue"], order="XYCTZ")


def sample_one_channel(path: Path) -> Path:
    """A stand-in for the seed sample 10974.tif: 914 x 1260, one uint8 page, no channel name."""
    return write_2008_ome(path, [cells(1260, 914, 10974)], [None])


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
