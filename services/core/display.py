"""Prepare a picture (a reader's whole decoded image) for display as 8-bit sRGB or grey."""

import pyvips

from plexzoom.core.errors import CorruptImage
from plexzoom.core.manifest import Channel
from plexzoom.core.readers.base import RGB_COLORS, RGB_NAMES, UNREADABLE

RGB_CHANNELS = [
    Channel(index=i, name=name, color=color)
    for i, (name, color) in enumerate(zip(RGB_NAMES, RGB_COLORS, strict=True))
]
GREY_CHANNELS = [Channel(index=0, name="Gray", color="#ffffff")]


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
    """Scale 16-bit pixels into 0..255 without clipping bright values to white."""
    if image.interpretation == "cmyk":
        return image.colourspace("srgb")
    if image.format == "uchar":
        return image
    # Pictures are 8 or 16 bits (readers give other types as channels).
    if image.bands in (3, 4):
        return image.copy(interpretation="rgb16").colourspace("srgb").cast("uchar")
    return image.copy(interpretation="grey16").colourspace("b-w").cast("uchar")
