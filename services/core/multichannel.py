"""Multi-channel conversion: statistics, an 8-bit pyramid per channel, one composite pyramid.

The original is decoded twice, streaming, each page once per pass: once for the histograms
(8/16-bit data; 32-bit and float channels need their range first), once to turn every channel
into 8-bit codes, kept in a scratch tiled TIFF (width x height x channels bytes). The
channel pyramids (lossless PNG tiles) and the default composite (JPEG tiles, what plain DZI
clients see) are cut from that file.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pyvips

from plexzoom.core.channel_stats import (
    BINS,
    ChannelStats,
    Quantizer,
    code_table,
    histogram,
    make_quantizer,
    summarize,
)
from plexzoom.core.errors import CorruptImage
from plexzoom.core.manifest import Channel, Pyramid, Window
from plexzoom.core.pca import pca_image
from plexzoom.core.pyramid import Progress, PyramidOptions
from plexzoom.core.readers import ChannelSource
from plexzoom.core.readers.base import UNREADABLE
from plexzoom.core.render import ChannelRender, channel_table
from plexzoom.core.render import default_color as palette_color

SMALL_INTS = ("uint8", "int8", "uint16", "int16")
StorePyramid = Callable[[str, pyvips.Image, PyramidOptions, Progress], Pyramid]


@dataclass
class ChannelPlan:
    """What the first pass over a channel decided: its statistics and 8-bit mapping."""

    quantizer: Quantizer
    stats: ChannelStats
    lut: list[float]
    codes: np.ndarray  # code of each of the 65536 quantizer bins


def default_color(index: int, count: int) -> str:
    """The palette colour of channel ``index`` (a single channel is shown white)."""
    return "#ffffff" if count == 1 else palette_color(index)


def plan_channel(source: ChannelSource, index: int) -> ChannelPlan:
    """Histogram pass: statistics, and the table from native values to 8-bit codes."""
    quantizer = make_quantizer(partial(source.channel, index))
    counts, non_finite = histogram(source.channel(index), quantizer)
    stats = summarize(counts, quantizer, non_finite)
    lut, codes = code_table(stats, quantizer)
    return ChannelPlan(quantizer, stats, lut, codes)


def plan_channels(source: ChannelSource) -> list[ChannelPlan]:
    """Statistics and code tables of every channel; 8/16-bit data in a single pass."""
    count = len(source.channels)
    if source.dtype not in SMALL_INTS:
        return [plan_channel(source, i) for i in range(count)]
    image = source.all_channels()
    quantizer = make_quantizer(lambda: image)  # small integers: decided from the header alone
    found = np.asarray(quantizer.quantize(image).hist_find().numpy()).reshape(-1, count)
    plans = []
    for i in range(count):
        counts = np.pad(found[:, i].astype(np.int64), (0, BINS - found.shape[0]))
        stats = summarize(counts, quantizer, 0)
        lut, codes = code_table(stats, quantizer)
        plans.append(ChannelPlan(quantizer, stats, lut, codes))
    return plans


def write_codes(
    source: ChannelSource, plans: list[ChannelPlan], path: Path, progress: Progress
) -> pyvips.Image:
    """Every channel as 8-bit codes in one pass, kept in a scratch tiled TIFF.

    Uncompressed tiles read back through libvips' tile cache: unlike a memory-mapped .v file,
    the worker's memory does not grow with the image.
    """
    image = source.all_channels()
    bands = []
    for i, plan in enumerate(plans):
        table = pyvips.Image.new_from_array(plan.codes.reshape(1, -1)).cast("uchar")
        bands.append(plan.quantizer.quantize(image.extract_band(i)).maplut(table))
    codes = bands[0] if len(bands) == 1 else bands[0].bandjoin(bands[1:])
    codes.set_progress(True)
    codes.signal_connect("eval", lambda _img, p: progress(p.percent / 100))
    try:
        codes.tiffsave(str(path), tile=True, tile_width=256, tile_height=256, bigtiff=True)
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc
    return pyvips.Image.new_from_file(str(path))


def composite_image(
    codes: pyvips.Image, plans: list[ChannelPlan], channels: list[Channel]
) -> pyvips.Image:
    """Additive blend of every channel in its colour and default window, as 8-bit sRGB."""
    layers = []
    for channel, plan in zip(channels, plans, strict=True):
        assert channel.window is not None
        setting = ChannelRender(
            index=channel.index, color=channel.color, min=channel.window.min, max=channel.window.max
        )
        table = channel_table(plan.lut, setting)
        lut_image = pyvips.Image.new_from_array(table.reshape(1, 256, 3))
        layers.append(codes.extract_band(channel.index).maplut(lut_image))
    total = layers[0] if len(layers) == 1 else pyvips.Image.sum(layers)
    # floor(x + 0.5), clamped by the cast: the rounding of the render model.
    return (total + 0.5).floor().cast("uchar").copy(interpretation="srgb")


def convert_channels(
    source: ChannelSource,
    store: StorePyramid,
    options: PyramidOptions,
    progress: Progress,
    codes_path: Path,
) -> list[Channel]:
    """Analyse every channel, write its 8-bit pyramid, then the composite's."""
    count = len(source.channels)
    steps = count + 3
    plans = plan_channels(source)
    progress(1 / steps)
    codes = write_codes(source, plans, codes_path, _part(progress, 1, steps))
    lossless = PyramidOptions(tile_size=options.tile_size, overlap=options.overlap, format="png")
    channels = []
    for info, plan in zip(source.channels, plans, strict=True):
        i, stats = info.index, plan.stats
        band = codes.extract_band(i).copy(interpretation="b-w")
        pyramid = store(f"c{i}", band, lossless, _part(progress, 2 + i, steps))
        channels.append(
            Channel(
                index=i,
                name=info.name,
                color=info.color or default_color(i, count),
                dtype=source.dtype,
                wavelength_nm=info.wavelength_nm,
                stats=stats,
                window=Window(min=stats.percentiles["0.1"], max=stats.percentiles["99.9"]),
                lut=plan.lut,
                pyramid=pyramid.name,
            )
        )
    store(
        "image", composite_image(codes, plans, channels), options, _part(progress, 2 + count, steps)
    )
    if count >= 3 and any(info.wavelength_nm for info in source.channels):
        store("pca", pca_image(codes, [p.lut for p in plans]), options, lambda _p: None)
    return channels


def _part(progress: Progress, step: int, steps: int) -> Progress:
    """Progress of one step (0..1) as overall progress."""
    return lambda p: progress((step + p) / steps)
