"""Server-side rendering: channel tiles mixed under any render settings, as PNG tiles.

    /tiles/{id}/{generation}/render.dzi?c=...
    /tiles/{id}/{generation}/render_files/{level}/{col}_{row}.png?c=...

``c`` uses the query encoding of plexzoom.core.render; without it the image's saved defaults
are drawn. The math is plexzoom.core.render's, the twin of the viewer's.
"""

import hashlib

import numpy as np
import pyvips

from plexzoom.core.render import RenderSettings, Table, render, settings_to_query

NAME = "render"


def compose_tile(channel_pngs: list[bytes], tables: list[Table], shape: tuple[int, int]) -> bytes:
    """Decode the visible channels' 8-bit tiles, mix them, and encode the result as PNG."""
    codes = [_grey(png) for png in channel_pngs]
    rgb = render(codes, tables, shape)
    return bytes(pyvips.Image.new_from_array(rgb).write_to_buffer(".png[compression=1]"))


def tile_shape(channel_png: bytes) -> tuple[int, int]:
    """(height, width) of a tile, read from its header only."""
    image = pyvips.Image.new_from_buffer(channel_png, "")
    return image.height, image.width


def settings_tag(settings: RenderSettings) -> str:
    """A short fingerprint of settings, for ETags."""
    return hashlib.sha256(settings_to_query(settings).encode()).hexdigest()[:16]


def _grey(png: bytes) -> np.ndarray:
    """The codes of one 8-bit channel tile as an (H, W) uint8 array."""
    pixels = np.asarray(pyvips.Image.new_from_buffer(png, "").extract_band(0).numpy())
    return pixels.astype(np.uint8, copy=False)
