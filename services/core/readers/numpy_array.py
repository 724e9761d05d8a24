"""NumPy .npy files (memory-mapped) and the array-to-channels adapter shared with MATLAB/HDF5."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import (
    DTYPE_TO_VIPS,
    ChannelInfo,
    ChannelSource,
    ReadOptions,
    check_dtype,
    check_header,
    default_channels,
)

# Axis orders (of an H x W x C view) that make the array C-contiguous, i.e. zero-copy for libvips.
_PLANAR, _PLANAR_T, _INTERLEAVED, _INTERLEAVED_T = (2, 0, 1), (2, 1, 0), (0, 1, 2), (1, 0, 2)


def open_npy(path: Path, options: ReadOptions) -> ChannelSource:
    """Memory-map a .npy array (H x W, H x W x C or C x H x W); never unpickles."""
    dtype, shape = _npy_header(path)
    if dtype.hasobject or dtype.names is not None:
        raise UnsupportedFormat(
            "This .npy file holds Python objects or records (it would need pickle, which "
            "plexzoom never loads); save a plain numeric array with numpy.save."
        )
    check_dtype("uint8" if dtype.kind == "b" else dtype.name)
    check_array_header(shape, dtype, options)
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise CorruptImage(
            f"The .npy file is shorter than its header ({shape}, {dtype}) says; it may be "
            "truncated. Save it again and upload the new file."
        ) from exc
    hwc, layout = hwc_view(array, options.array_layout)
    return array_source(hwc, default_channels(hwc.shape[2]), options, {"layout": layout})


def _npy_header(path: Path) -> tuple[np.dtype[Any], tuple[int, ...]]:
    """The dtype and shape a .npy header declares."""
    try:
        with path.open("rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
    except (ValueError, OSError, SyntaxError) as exc:
        raise CorruptImage(
            "The .npy header cannot be read; the file may be damaged. Save it again."
        ) from exc
    return dtype, shape


def check_array_header(shape: tuple[int, ...], dtype: np.dtype[Any], options: ReadOptions) -> None:
    """Check a declared array shape against the limits before any data is read."""
    # A view of the declared shape that holds no data: hwc_view only looks at the shape.
    shape_only = np.broadcast_to(np.zeros((), np.uint8), shape)
    height, width, count = hwc_view(shape_only, options.array_layout)[0].shape
    check_header(width, height, count, dtype.itemsize, options)


def hwc_view(array: np.ndarray, layout: str | None = None) -> tuple[np.ndarray, str]:
    """View a 2-D or 3-D array as H x W x C; unless ``layout`` says, C is the shorter end axis."""
    while array.ndim > 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        return array[:, :, np.newaxis], "HW"
    if array.ndim == 3 and layout not in (None, "HWC", "CHW"):
        raise UnsupportedFormat(f"Unknown array layout {layout!r}; use HWC or CHW.")
    if array.ndim == 3:
        if layout == "HWC" or (layout is None and array.shape[2] <= array.shape[0]):
            return array, "HWC"
        return array.transpose(1, 2, 0), "CHW"
    raise UnsupportedFormat(
        f"The array has shape {array.shape}; plexzoom reads 2-D images and 3-D stacks "
        "(H x W x C or C x H x W)."
    )


def array_source(
    hwc: np.ndarray,
    channels: list[ChannelInfo],
    options: ReadOptions,
    notes: dict[str, Any],
    on_close: Callable[[], None] | None = None,
) -> ChannelSource:
    """A ChannelSource over an H x W x C array view (memory-mapped or in memory)."""
    height, width, count = hwc.shape
    if height < 1 or width < 1:
        raise UnsupportedFormat(f"The array has shape {hwc.shape}, which holds no pixels.")
    if hwc.dtype.kind == "b":
        hwc = hwc.view(np.uint8)
    dtype = check_dtype(hwc.dtype.name)
    check_header(width, height, count, hwc.dtype.itemsize, options)
    return ChannelSource(
        width=width,
        height=height,
        dtype=dtype,
        channels=channels,
        is_rgb=False,
        physical_size=None,
        notes=notes,
        load_channel=channel_loader(hwc),
        on_close=on_close,
    )


def channel_loader(hwc: np.ndarray) -> Callable[[int], pyvips.Image]:
    """Load channel i of an H x W x C view without copying when its layout allows."""
    for order in (_PLANAR, _PLANAR_T, _INTERLEAVED, _INTERLEAVED_T):
        view = hwc.transpose(order)
        if view.flags.c_contiguous:
            break
    else:  # an unusual stride pattern: one contiguous copy
        order, view = _PLANAR, np.ascontiguousarray(hwc.transpose(_PLANAR))
    fmt = DTYPE_TO_VIPS[hwc.dtype.name]
    return partial(_load, view, order, fmt, not hwc.dtype.isnative)


def _load(view: np.ndarray, order: tuple[int, ...], fmt: str, swap: bool, i: int) -> pyvips.Image:
    """Wrap the array's memory as a libvips image (no copy) and pick channel i."""
    if order in (_PLANAR, _PLANAR_T):
        plane = view[i]
        image = pyvips.Image.new_from_memory(plane, plane.shape[1], plane.shape[0], 1, fmt)
    else:
        rows, cols, bands = view.shape
        image = pyvips.Image.new_from_memory(view, cols, rows, bands, fmt).extract_band(i)
    if swap:
        image = image.byteswap()
    if order in (_PLANAR_T, _INTERLEAVED_T):  # stored column-major (MATLAB, Fortran order)
        image = image.rot90().fliphor()
    return image
