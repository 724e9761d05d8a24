"""Snapshots: a region of an image as one PNG, with the scale bar and channel legend burned in.

The picture is made the way the viewer makes it: the pyramid level just finer than the output
scale, its 8-bit codes mixed with the render model (plexzoom.core.render, the twin of the
viewer's), then resized to the chosen width. RGB images use their own pyramid. The scale bar is
a round length (1, 2 or 5 x 10^n, as in viewer/js/lib/scalebar.js) of the image's pixel size.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyvips

from plexzoom.core import keys
from plexzoom.core.errors import BadRequest, Conflict
from plexzoom.core.manifest import Manifest
from plexzoom.core.pyramid import TileIndex, level_sizes
from plexzoom.core.render import RenderSettings, channel_table, render
from plexzoom.core.storage import Storage

MAX_PIXELS = 64 * 1000**2  # 64 megapixels: an 8000 x 8000 figure (192 MB of RGB while encoded)
MAX_SIDE = 16384
BAND_ROWS = 512  # rows mixed at once (24 bytes a pixel while mixing)
_METRES = {"nm": 1e-9, "µm": 1e-6, "um": 1e-6, "μm": 1e-6, "micron": 1e-6, "mm": 1e-3, "m": 1.0}
_NAMES = (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9))


@dataclass(frozen=True)
class Region:
    """A rectangle of the full-resolution image, in pixels."""

    x: int
    y: int
    width: int
    height: int


def snapshot(
    storage: Storage,
    manifest: Manifest,
    region: Region,
    width: int,
    settings: RenderSettings | None,
    scale_bar: bool = True,
    legend: bool = True,
) -> bytes:
    """The PNG of ``region`` at ``width`` pixels wide (height in proportion)."""
    height = _check(manifest, region, width)
    if manifest.channels and "c0" in manifest.pyramids:
        assert settings is not None
        picture = _mixed(storage, manifest, region, width, height, settings)
        shown = [(manifest.channels[c.index].name, c.color) for c in settings.visible()]
    else:
        name = "image" if "image" in manifest.pyramids else next(iter(manifest.pyramids))
        picture = _resized(_region(storage, manifest, name, region, width), width, height)
        shown = []
    if scale_bar and manifest.physical_size is not None:
        size, _size_y, unit = manifest.physical_size
        picture = _draw_scale_bar(picture, size * region.width / width, unit)
    if legend and shown:
        picture = _draw_legend(picture, shown)
    data: bytes = picture.pngsave_buffer(compression=6)
    return data


def _check(manifest: Manifest, region: Region, width: int) -> int:
    """The output height; refuse regions outside the image and outputs beyond the limits."""
    if manifest.status != "ready" or manifest.width is None or manifest.height is None:
        raise Conflict("The image is not converted yet; a snapshot can be made once it is ready.")
    if region.width < 1 or region.height < 1 or region.x < 0 or region.y < 0:
        raise BadRequest("The region must have a positive size and start inside the image.")
    if region.x + region.width > manifest.width or region.y + region.height > manifest.height:
        raise BadRequest(
            f"The region ends outside the image, which is {manifest.width} x "
            f"{manifest.height} pixels."
        )
    if not 1 <= width <= region.width:
        raise BadRequest(
            f"The width must be between 1 and the region's {region.width} pixels (full "
            "resolution); a snapshot is never enlarged."
        )
    height = max(1, round(region.height * width / region.width))
    if width * height > MAX_PIXELS or height > MAX_SIDE or width > MAX_SIDE:
        raise BadRequest(
            f"A {width} x {height} snapshot is larger than this server makes (at most "
            f"{MAX_SIDE} pixels a side and {MAX_PIXELS // 1000**2} megapixels); choose a "
            "smaller width or zoom in."
        )
    return height


def _level(manifest: Manifest, region: Region, width: int) -> tuple[int, float]:
    """The coarsest Deep Zoom level at least as fine as the output, and its scale."""
    assert manifest.width is not None and manifest.height is not None
    sizes = level_sizes(manifest.width, manifest.height)
    wanted = width / region.width
    for level, (level_width, _h) in enumerate(sizes):
        scale = level_width / manifest.width
        if scale >= wanted * (1 - 1e-9):
            return level, scale
    return len(sizes) - 1, 1.0


def _region(
    storage: Storage, manifest: Manifest, name: str, region: Region, width: int
) -> pyvips.Image:
    """``region`` of pyramid ``name`` at the level chosen for ``width``, from its tiles."""
    pyramid = manifest.pyramids[name]
    index = TileIndex.from_json(
        storage.get_bytes(keys.index_key(manifest.id, pyramid.generation, name))
    )
    level, scale = _level(manifest, region, width)
    level_w, level_h = level_sizes(index.width, index.height)[level]
    left, top = math.floor(region.x * scale), math.floor(region.y * scale)
    right = min(math.ceil((region.x + region.width) * scale), level_w)
    bottom = min(math.ceil((region.y + region.height) * scale), level_h)
    size = index.tile_size
    cols = range(left // size, (max(right, left + 1) - 1) // size + 1)
    rows = range(top // size, (max(bottom, top + 1) - 1) // size + 1)
    archive = keys.pyramid_key(manifest.id, pyramid.generation, name)

    def tile(spot: tuple[int, int]) -> pyvips.Image:
        col, row = spot
        where = index.tile_range(level, col, row)
        if where is None:
            raise Conflict("The pyramid is incomplete; convert the image again.")
        image = pyvips.Image.new_from_buffer(storage.get_range(archive, *where), "")
        cut_x, cut_y = (index.overlap if col else 0), (index.overlap if row else 0)
        tile_w, tile_h = min(size, level_w - col * size), min(size, level_h - row * size)
        return image.crop(cut_x, cut_y, tile_w, tile_h)

    spots = [(col, row) for row in rows for col in cols]
    with ThreadPoolExecutor(max_workers=8) as pool:
        tiles = list(pool.map(tile, spots))
    mosaic = pyvips.Image.arrayjoin(tiles, across=len(cols))
    return mosaic.crop(left - cols[0] * size, top - rows[0] * size, right - left, bottom - top)


def _resized(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """``image`` resized to exactly ``width`` x ``height`` (RGB, 8-bit)."""
    if image.bands == 1:
        image = image.bandjoin([image, image])
    image = image.extract_band(0, n=3)
    if (image.width, image.height) != (width, height):
        image = image.resize(width / image.width, vscale=height / image.height)
    return image.cast("uchar").copy(interpretation="srgb")


def _mixed(
    storage: Storage,
    manifest: Manifest,
    region: Region,
    width: int,
    height: int,
    settings: RenderSettings,
) -> pyvips.Image:
    """The visible channels' codes mixed with the render model, then resized."""
    tables, codes = [], []
    for setting in settings.visible():
        channel = manifest.channels[setting.index]
        tables.append(channel_table(channel.lut or [], setting))
        codes.append(_region(storage, manifest, f"c{setting.index}", region, width))
    if not codes:
        return pyvips.Image.black(width, height, bands=3).copy(interpretation="srgb")
    level_w, level_h = codes[0].width, codes[0].height
    bands = []
    for top in range(0, level_h, BAND_ROWS):
        rows = min(BAND_ROWS, level_h - top)
        arrays = [np.asarray(c.crop(0, top, level_w, rows).extract_band(0).numpy()) for c in codes]
        bands.append(pyvips.Image.new_from_array(render(arrays, tables)))
    mixed = bands[0] if len(bands) == 1 else pyvips.Image.arrayjoin(bands, across=1)
    return _resized(mixed, width, height)


def round_length(limit: float) -> float:
    """The largest 1, 2 or 5 x 10^n that is not above ``limit`` (> 0)."""
    decade = 10.0 ** math.floor(math.log10(limit))
    return next(float(s * decade) for s in (5, 2, 1) if s * decade <= limit * (1 + 1e-9))


def format_length(length: float, unit: str) -> str:
    """Metric lengths such as "20 µm" or "1.5 mm" in the unit that keeps the number in 1..999."""
    metres = _METRES.get(unit)
    if metres is None:
        return f"{length:.3g} {unit}"
    value = length * metres
    name, size = next(((n, s) for n, s in _NAMES if value >= s * (1 - 1e-9)), _NAMES[-1])
    return f"{value / size:.3g} {name}"


def _font_px(picture: pyvips.Image) -> int:
    """Text height that suits the picture's width."""
    width: int = picture.width
    return max(12, min(48, round(width / 60)))


def _text(text: str, px: int) -> pyvips.Image:
    """White text on transparent, ``px`` pixels high (RGBA)."""
    mask = pyvips.Image.text(html.escape(text), font=f"sans {px}", dpi=72)  # Pango markup
    white = mask.new_from_image([255, 255, 255])
    return white.bandjoin(mask).copy(interpretation="srgb")


def _box(width: int, height: int) -> pyvips.Image:
    """A dark, three-quarter opaque panel (RGBA) under burned-in text."""
    black = pyvips.Image.black(width, height)
    return black.new_from_image([0, 0, 0, 190]).copy(interpretation="srgb")


def _over(picture: pyvips.Image, layers: Sequence[tuple[pyvips.Image, int, int]]) -> pyvips.Image:
    """``picture`` with RGBA ``layers`` (image, x, y) composited over it, as RGB."""
    images = [layer for layer, _x, _y in layers]
    xs = [x for _layer, x, _y in layers]
    ys = [y for _layer, _x, y in layers]
    modes = ["over"] * len(images)
    out = picture.bandjoin(255).composite(images, modes, x=xs, y=ys)
    return out.flatten().cast("uchar").copy(interpretation="srgb")


def _draw_scale_bar(picture: pyvips.Image, per_pixel: float, unit: str) -> pyvips.Image:
    """A round length, at most a fifth of the width, bottom left."""
    px = _font_px(picture)
    length = round_length(per_pixel * picture.width / 5)
    bar_px = max(1, round(length / per_pixel))
    label = _text(format_length(length, unit), px)
    pad = px // 2
    box_w = max(bar_px, label.width) + 2 * pad
    box_h = label.height + px // 2 + 3 * pad
    x0, y0 = pad, picture.height - box_h - pad
    bar = pyvips.Image.black(bar_px, max(2, px // 4)).new_from_image([255, 255, 255, 255])
    layers = [
        (_box(box_w, box_h), x0, y0),
        (label, x0 + pad, y0 + pad),
        (bar.copy(interpretation="srgb"), x0 + pad, y0 + 2 * pad + label.height),
    ]
    return _over(picture, layers)


def _draw_legend(picture: pyvips.Image, channels: Sequence[tuple[str, str]]) -> pyvips.Image:
    """Each visible channel's colour and name, top left."""
    px = _font_px(picture)
    pad = px // 2
    labels = [_text(name, px) for name, _color in channels]
    row_h = max(px, *(label.height for label in labels)) + pad
    box_w = px + pad + max(label.width for label in labels) + 2 * pad
    layers = [(_box(box_w, row_h * len(labels) + pad), pad, pad)]
    for i, ((_name, color), label) in enumerate(zip(channels, labels, strict=True)):
        y = 2 * pad + i * row_h
        rgb = [int(color[k : k + 2], 16) for k in (1, 3, 5)]
        swatch = pyvips.Image.black(px, px).new_from_image([*rgb, 255])
        layers.append((swatch.copy(interpretation="srgb"), 2 * pad, y))
        layers.append((label, 3 * pad + px, y))
    return _over(picture, layers)
