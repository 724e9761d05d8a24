"""Multi-channel conversion: statistics, an 8-bit pyramid per channel, one composite pyramid.

Each channel is read three times, streaming: once for its histogram (three times for 32-bit
and float data), once to write its 8-bit code pyramid (lossless PNG tiles) and once more, with
the others, for the default composite (JPEG tiles), which is what plain DZI clients see.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import pyvips

from plexzoom.core.channel_stats import (
    ChannelStats,
    Quantizer,
    code_table,
    histogram,
    make_quantizer,
    summarize,
)
from plexzoom.core.manifest import Channel, Pyramid, Window
from plexzoom.core.pyramid import Progress, PyramidOptions
from plexzoom.core.readers import ChannelSource
from plexzoom.core.render import ChannelRender, channel_table
from plexzoom.core.render import default_color as palette_color

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


def code_image(source: ChannelSource, index: int, plan: ChannelPlan) -> pyvips.Image:
    """Channel ``index`` as 8-bit codes (a fresh lazy image)."""
    table = pyvips.Image.new_from_array(plan.codes.reshape(1, -1)).cast("uchar")
    bins = plan.quantizer.quantize(source.channel(index))
    return bins.maplut(table).copy(interpretation="b-w")


def composite_image(
    source: ChannelSource, plans: list[ChannelPlan], channels: list[Channel]
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
        layers.append(code_image(source, channel.index, plan).maplut(lut_image))
    total = layers[0] if len(layers) == 1 else pyvips.Image.sum(layers)
    # floor(x + 0.5), clamped by the cast: the rounding of the render model.
    return (total + 0.5).floor().cast("uchar").copy(interpretation="srgb")


def convert_channels(
    source: ChannelSource, store: StorePyramid, options: PyramidOptions, progress: Progress
) -> list[Channel]:
    """Analyse and tile every channel, then the composite; returns the manifest's channels."""
    count = len(source.channels)
    steps = 2 * count + 1
    channels, plans = [], []
    lossless = PyramidOptions(tile_size=options.tile_size, overlap=options.overlap, format="png")
    for info in source.channels:
        i = info.index
        progress(2 * i / steps)
        plan = plan_channel(source, i)
        pyramid = store(
            f"c{i}", code_image(source, i, plan), lossless, _part(progress, 2 * i + 1, steps)
        )
        stats = plan.stats
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
        plans.append(plan)
    store(
        "image",
        composite_image(source, plans, channels),
        options,
        _part(progress, 2 * count, steps),
    )
    return channels


def _part(progress: Progress, step: int, steps: int) -> Progress:
    """Progress of one step (0..1) as overall progress."""
    return lambda p: progress((step + p) / steps)
