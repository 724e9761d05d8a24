"""Whole-slide formats only a slide driver reads (NDPI, MRXS, SCN, BIF, DICOM WSI): OpenSlide 4.

libvips from pyvips-binary has no OpenSlide loader, so the full-resolution level is decoded by
openslide-python in blocks of whole tiles (several threads; OpenSlide is thread-safe and
releases the GIL) into an uncompressed scratch file, which libvips then maps (``rawload``) and
streams into the pyramid. Memory stays at a few blocks whatever the slide's size; the scratch
file holds width x height x 3 bytes. Where the driver reports transparent pixels (regions the
scanner skipped), they are laid over the slide's background colour, as OpenSlide's viewers do.
"""

from __future__ import annotations

import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import (
    UNREADABLE,
    ChannelSource,
    ReadOptions,
    check_size,
    rgb_channels,
)
from plexzoom.core.readers.slide import slide_facts

log = logging.getLogger(__name__)
BLOCK_BYTES = 4 * 1024**2  # RGBA bytes OpenSlide decodes per task
DEFAULT_TILE = 256  # where the driver does not report its tile size


def open_openslide(path: Path, options: ReadOptions, scratch: Path | None = None) -> ChannelSource:
    """Open a slide OpenSlide reads as one RGB picture; its pixels are decoded on first use."""
    import openslide  # a native library: loaded only where slides are read

    try:
        slide = openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError as exc:
        raise UnsupportedFormat(
            "This file looks like a whole-slide scan, but OpenSlide cannot read it. Export "
            "it from the scanner's software as SVS or pyramidal TIFF and upload that."
        ) from exc
    except openslide.OpenSlideError as exc:
        raise CorruptImage(UNREADABLE) from exc
    width, height = slide.dimensions
    try:
        check_size(width, height, options)
    except Exception:
        slide.close()
        raise
    facts = slide_facts(slide)
    folder = scratch if scratch is not None else path.parent
    decoded: list[Path] = []

    def picture() -> pyvips.Image:
        if not decoded:  # decoded once; each channel and picture maps the same file
            decoded.append(_decode(slide, folder))
        image = pyvips.Image.rawload(str(decoded[0]), width, height, 3)
        return image.copy(interpretation="srgb")

    def close() -> None:
        slide.close()
        for raw in decoded:
            raw.unlink(missing_ok=True)

    def read_point(x: int, y: int) -> list[float]:
        rgba = np.asarray(slide.read_region((x, y), 0, (1, 1)))
        return [float(v) for v in _flatten(rgba, _background(slide))[0, 0]]

    notes: dict[str, Any] = facts.notes()
    notes["slide_levels"] = slide.level_count
    return ChannelSource(
        width=width,
        height=height,
        dtype="uint8",
        channels=rgb_channels(),
        is_rgb=True,
        physical_size=(facts.mpp[0], facts.mpp[1], "µm") if facts.mpp else None,
        notes=notes,
        load_channel=lambda i: picture().extract_band(i),
        load_picture=picture,
        on_close=close,
        slide_path=path,
        read_point=read_point,
    )


def _decode(slide: Any, folder: Path) -> Path:
    """Level 0 of ``slide`` as raw RGB bytes in a scratch file (row after row)."""
    width, height = slide.dimensions
    tile_w, tile_h = _tile_size(slide)
    block_w = max(tile_w, (BLOCK_BYTES // (4 * tile_h)) // tile_w * tile_w)
    background = _background(slide)
    blocks = [(x, y) for y in range(0, height, tile_h) for x in range(0, width, block_w)]
    fd, name = tempfile.mkstemp(prefix="slide-", suffix=".rgb", dir=folder)
    try:
        os.ftruncate(fd, width * height * 3)

        def decode(at: tuple[int, int]) -> None:
            x, y = at
            size = (min(block_w, width - x), min(tile_h, height - y))
            rgba = np.asarray(slide.read_region((x, y), 0, size))
            rgb = _flatten(rgba, background)
            for row in range(size[1]):
                os.pwrite(fd, rgb[row].data, ((y + row) * width + x) * 3)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            for _ in pool.map(decode, blocks):
                pass
    except Exception as exc:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        log.info("slide decoding failed: %s", type(exc).__name__)
        raise CorruptImage(UNREADABLE) from exc
    os.close(fd)
    return Path(name)


def _flatten(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA from OpenSlide over the background colour, as contiguous RGB."""
    alpha = rgba[..., 3]
    rgb = np.ascontiguousarray(rgba[..., :3])
    if alpha.min() == 255:
        return rgb
    # OpenSlide's RGBA is premultiplied: colour + (1 - alpha) x background.
    cover = (255 - alpha.astype(np.uint16))[..., None] * background // 255
    flat: np.ndarray = (rgb + cover).clip(0, 255).astype(np.uint8)
    return flat


def _tile_size(slide: Any) -> tuple[int, int]:
    """The driver's tile size at level 0, or DEFAULT_TILE."""
    props = slide.properties
    try:
        width = int(props.get("openslide.level[0].tile-width", DEFAULT_TILE))
        height = int(props.get("openslide.level[0].tile-height", DEFAULT_TILE))
    except ValueError:
        return DEFAULT_TILE, DEFAULT_TILE
    return max(16, min(width, 4096)), max(16, min(height, 4096))


def _background(slide: Any) -> np.ndarray:
    """The slide's background colour (``openslide.background-color``, hex), white if none."""
    text = slide.properties.get("openslide.background-color") or "FFFFFF"
    try:
        value = int(text, 16)
    except ValueError:
        value = 0xFFFFFF
    return np.array([(value >> 16) & 255, (value >> 8) & 255, value & 255], np.uint16)
