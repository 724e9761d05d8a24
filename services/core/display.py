"""Open an original with libvips and prepare it for display as 8-bit sRGB or grey."""

from pathlib import Path
from typing import Any

import pyvips

from plexzoom.core.errors import CorruptImage
from plexzoom.core.manifest import Channel
from plexzoom.core.readers.base import RGB_COLORS, RGB_NAMES, UNREADABLE, fail_on

RGB_CHANNELS = [
    Channel(index=i, name=name, color=color)
    for i, (name, color) in enumerate(zip(RGB_NAMES, RGB_COLORS, strict=True))
]
GREY_CHANNELS = [Channel(index=0, name="Gray", color="#ffffff")]


def _load(path: Path, page: int = 0) -> pyvips.Image:
    """Open one page; damaged data fails the decode instead of drawing grey rows."""
    options: dict[str, Any] = {"page": page} if page else {}  # single-page loaders take none
    head = pyvips.Image.new_from_file(str(path), fail_on="error", **options)  # header only
    options["fail_on"] = fail_on(head.get("vips-loader"))
    if head.format in ("uchar", "char", "ushort", "short"):
        # These scale in one pass; other types need their range first (two passes: random access).
        options["access"] = "sequential"
    return pyvips.Image.new_from_file(str(path), **options)


def open_image(path: Path) -> pyvips.Image:
    """Open the largest page of ``path`` (slides carry small label and macro pages too)."""
    try:
        first = _load(path)
        pages = first.get("n-pages") if first.get_typeof("n-pages") else 1
        if pages <= 1:
            return first
        headers = [_load(path, page) for page in range(pages)]
        best = max(range(pages), key=lambda p: (headers[p].width * headers[p].height, -p))
        return headers[best]
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc


def to_display(image: pyvips.Image) -> pyvips.Image:
    """Orient, convert to sRGB (or grey), scale to 8 bits and flatten alpha onto white."""
    try:
        if image.get_typeof("orientation"):
            image = image.autorot()
        if image.get_typeof("icc-profile-data") and image.bands >= 3:
            image = image.icc_transform("srgb", embedded=True, intent="perceptual")
        image = _to_8bit(image)
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        if image.bands == 2:
            image = image.extract_band(0)
        elif image.bands > 3:
            image = image.extract_band(0, n=3)
        return image.copy(interpretation="srgb" if image.bands == 3 else "b-w")
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc


def display_channels(image: pyvips.Image) -> list[Channel]:
    """The channel list shown for a display image (one entry per band)."""
    return list(RGB_CHANNELS) if image.bands == 3 else list(GREY_CHANNELS)


def _to_8bit(image: pyvips.Image) -> pyvips.Image:
    """Scale any pixel format into 0..255 without clipping bright values to white."""
    if image.interpretation == "cmyk":
        return image.colourspace("srgb")
    if image.format == "uchar":
        return image
    if image.format in ("ushort", "short") and image.bands in (3, 4):
        return image.copy(interpretation="rgb16").colourspace("srgb").cast("uchar")
    if image.format in ("ushort", "short") and image.bands in (1, 2):
        return image.copy(interpretation="grey16").colourspace("b-w").cast("uchar")
    low, high = image.min(), image.max()
    scale = 255.0 / (high - low) if high > low else 1.0
    return ((image - low) * scale).cast("uchar")
