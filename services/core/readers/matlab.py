"""MATLAB .mat v5 files (scipy) and the variable choice shared with v7.3/HDF5."""

from __future__ import annotations

import math
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import (
    ChannelInfo,
    ChannelSource,
    ReadOptions,
    check_header,
    check_memory,
    default_channels,
)
from plexzoom.core.readers.numpy_array import array_source

NUMERIC_CLASSES = {
    "double": 8,
    "single": 4,
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "uint16": 2,
    "int32": 4,
    "uint32": 4,
    "int64": 8,
    "uint64": 8,
    "logical": 1,
}
_WAVELENGTH_NAME = re.compile(
    r"(wave_?lengths?(_?nm)?|lambdas?|wls?|bands?|band_?cent(er|re)s?)", re.IGNORECASE
)
_MAX_MICRONS = 30.0  # wavelength vectors below this are in micrometres
_MAT_ERRORS = (
    ValueError,
    OSError,
    TypeError,
    EOFError,
    NotImplementedError,
    struct.error,
    zlib.error,
    scipy.io.matlab.MatReadError,
)


@dataclass
class Variable:
    """One variable of a MATLAB/HDF5 file, shape in MATLAB order (rows, columns, pages)."""

    name: str
    shape: tuple[int, ...]
    kind: str  # MATLAB class: "double", "uint16", "cell", "struct", ...

    def describe(self) -> str:
        """Like MATLAB's whos: ``cube (double 512x512x31)``."""
        dims = "x".join(str(n) for n in self.shape)
        return f"{self.name} ({self.kind} {dims})" if dims else f"{self.name} ({self.kind})"


def open_mat5(path: Path, options: ReadOptions) -> ChannelSource:
    """Open a MATLAB v5/v6/v7 file; the image is decoded into memory."""
    try:
        variables = [Variable(n, tuple(s), c) for n, s, c in scipy.io.whosmat(str(path))]
    except _MAT_ERRORS as exc:
        raise CorruptImage(
            "The MATLAB file cannot be read; it may be damaged. Save it again and upload it."
        ) from exc
    image = choose_image(variables, options, "MATLAB file")
    check_variable(image, options)
    wavelengths = find_wavelengths(variables, image)
    names = [image.name] + ([wavelengths.name] if wavelengths else [])
    try:
        data = scipy.io.loadmat(str(path), variable_names=names, squeeze_me=False)
    except _MAT_ERRORS as exc:
        raise CorruptImage(
            f"The variable {image.name} cannot be read; the file may be damaged. Save it again "
            "and upload it."
        ) from exc
    vector = data.get(wavelengths.name) if wavelengths else None
    return matlab_source(data[image.name], vector, image, options)


def matlab_source(
    array: np.ndarray, vector: np.ndarray | None, image: Variable, options: ReadOptions
) -> ChannelSource:
    """A ChannelSource over a MATLAB array in MATLAB order (H x W or H x W x C)."""
    if array.dtype.kind not in "biuf":
        raise UnsupportedFormat(
            f"The variable {image.name} holds {array.dtype} values; plexzoom reads real numbers."
        )
    hwc = array[:, :, np.newaxis] if array.ndim == 2 else array
    notes: dict[str, Any] = {"variable": image.name}
    channels = wavelength_channels(vector, hwc.shape[2], notes)
    return array_source(hwc, channels or default_channels(hwc.shape[2]), options, notes)


def check_variable(image: Variable, options: ReadOptions) -> None:
    """Check an image variable's declared size against the limits before it is decoded."""
    rows, cols = image.shape[:2]
    pages = image.shape[2] if len(image.shape) == 3 else 1
    itemsize = NUMERIC_CLASSES[image.kind]
    check_header(cols, rows, pages, itemsize, options)
    check_memory(math.prod(image.shape) * itemsize, options, "This image")


def choose_image(variables: list[Variable], options: ReadOptions, what: str) -> Variable:
    """The variable named in the options, else the largest 2-D/3-D numeric array."""
    images = [v for v in variables if _is_image(v)]
    if options.variable is not None:
        named = [v for v in images if v.name == options.variable]
        if not named:
            raise UnsupportedFormat(
                f"The {what} has no numeric image called {options.variable!r}; variables "
                f"found: {_listing(variables)}."
            )
        return named[0]
    if not images:
        raise UnsupportedFormat(
            f"The {what} holds no numeric image; variables found: {_listing(variables)}. "
            "Save the image as a numeric array (H x W or H x W x C)."
        )
    return max(images, key=lambda v: (math.prod(v.shape), -images.index(v)))


def find_wavelengths(variables: list[Variable], image: Variable) -> Variable | None:
    """A numeric vector named like a wavelength list with one entry per channel."""
    channels = image.shape[2] if len(image.shape) == 3 else 1
    for v in variables:
        vector = v.kind in NUMERIC_CLASSES and max(v.shape, default=0) == math.prod(v.shape)
        if (
            channels > 1
            and vector
            and _WAVELENGTH_NAME.fullmatch(v.name)
            and max(v.shape) == channels
        ):
            return v
    return None


def wavelength_channels(
    vector: np.ndarray | None, count: int, notes: dict[str, Any]
) -> list[ChannelInfo]:
    """Channels named by band centre ("450 nm") when the wavelength vector fits."""
    if vector is None or vector.size != count or vector.dtype.kind not in "iuf":
        return []
    values = [float(v) for v in np.asarray(vector, dtype=np.float64).ravel()]
    if not all(math.isfinite(v) and v > 0 for v in values):
        return []
    if max(values) < _MAX_MICRONS:
        values = [v * 1000.0 for v in values]
        notes["wavelength_unit"] = "\u00b5m, converted to nm"
    return [ChannelInfo(i, f"{round(v, 1):g} nm", None, v) for i, v in enumerate(values)]


def _is_image(v: Variable) -> bool:
    """A numeric 2-D or 3-D array with at least two rows and two columns."""
    return v.kind in NUMERIC_CLASSES and len(v.shape) in (2, 3) and min(v.shape[:2]) > 1


def _listing(variables: list[Variable]) -> str:
    """``a (cell 1x3), s (struct 1x1)``, or "none"."""
    shown = ", ".join(v.describe() for v in variables[:20])
    more = f" and {len(variables) - 20} more" if len(variables) > 20 else ""
    return (shown + more) or "none"
