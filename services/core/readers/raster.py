"""PNG, JPEG and WebP through libvips: RGB photographs, or one grey channel."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from plexzoom.core.errors import CorruptImage
from plexzoom.core.readers.base import (
    UNREADABLE,
    VIPS_TO_DTYPE,
    ChannelInfo,
    ChannelSource,
    ReadOptions,
    check_dtype,
    check_header,
    fail_on,
    rgb_channels,
)

# Only the loader of the detected format ever runs (libvips would otherwise sniff on its own).
LOADERS = {"png": "pngload", "jpeg": "jpegload", "webp": "webpload"}
GREY = ChannelInfo(0, "Gray", "#ffffff")


def open_raster(path: Path, options: ReadOptions, kind: str) -> ChannelSource:
    """Open a PNG, JPEG or WebP; colour images are RGB (the composite is the image)."""
    try:
        head = _load(str(path), kind, 1)
        orientation = head.get("orientation") if head.get_typeof("orientation") else 1
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc
    dtype = check_dtype(VIPS_TO_DTYPE.get(head.format, head.format))
    colour = head.interpretation == "cmyk" or head.bands >= 3
    check_header(head.width, head.height, 3 if colour else 1, np.dtype(dtype).itemsize, options)
    notes: dict[str, Any] = {"format": kind}
    if orientation > 1:
        notes["orientation"] = orientation  # applied: channels come out upright
    if head.hasalpha():
        notes["alpha"] = "ignored"
    if head.get_typeof("n-pages") and head.get("n-pages") > 1:
        notes["frames_ignored"] = head.get("n-pages") - 1
    swap = orientation in (5, 6, 7, 8)
    return ChannelSource(
        width=head.height if swap else head.width,
        height=head.width if swap else head.height,
        dtype=dtype,
        channels=rgb_channels() if colour else [ChannelInfo(0, GREY.name, GREY.color)],
        is_rgb=colour,
        physical_size=None,
        notes=notes,
        load_channel=partial(_channel, str(path), kind, orientation),
        load_picture=partial(_load, str(path), kind, orientation),
    )


def _load(path: str, kind: str, orientation: int) -> pyvips.Image:
    """Open with the format's own loader; rotation needs random access."""
    access = "sequential" if orientation <= 1 else "random"
    loader = getattr(pyvips.Image, LOADERS[kind])
    image: pyvips.Image = loader(path, access=access, fail_on=fail_on(LOADERS[kind]))
    return image


def _channel(path: str, kind: str, orientation: int, i: int) -> pyvips.Image:
    """One band of the upright image, in sRGB when the file is CMYK."""
    image = _load(path, kind, orientation)
    if image.interpretation == "cmyk":
        image = image.colourspace("srgb")
    if orientation > 1:
        image = image.autorot()
    return image.extract_band(i)
