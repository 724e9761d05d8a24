"""Multi-channel conversion: statistics, an 8-bit pyramid per channel, one composite pyramid.

The original is decoded twice, streaming, each page once per pass: once for the histograms
(8/16-bit data; 32-bit and float channels need their range first), once to turn every channel
into 8-bit codes, kept in scratch tiled TIFFs (width x height x channels bytes in all). The
channel pyramids (lossless PNG tiles) and the default composite (JPEG tiles, what plain DZI
clients see) are cut from those files. Channels stored as pages of their own are read a few
at a time, which bounds the worker's memory (README, "Memory").
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
    default_window,
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
from plexzoom.core.render import ChannelRender, channel_table, hex_to_rgb
from plexzoom.core.render import default_color as palette_color

SMALL_INTS = ("uint8", "int8", "uint16", "int16")
# Scratch code tiles are short: libvips caches two rows of tiles of every file it reads, and
# the composite reads every channel at once (measured: 256x32 tiles cost no time over 256x256).
CODES_TILE = (256, 32)
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


def channel_groups(source: ChannelSource, per_pass: int) -> list[list[int]]:
    """Channels read together in one pass.

    libvips keeps two rows of the source's tiles of every page it reads, so a pass over many
    pages holds many rows: channels stored as pages of their own are read ``per_pass`` at a
    time. Channels that share a page (interleaved samples) decode together anyway.
    """
    indices = list(range(len(source.channels)))
    if not source.pages_apart or per_pass < 1:
        return [indices]
    return [indices[i : i + per_pass] for i in range(0, len(indices), per_pass)]


def plan_channels(source: ChannelSource, groups: list[list[int]]) -> list[ChannelPlan]:
    """Statistics and code tables of every channel; 8/16-bit data in one pass per group."""
    if source.dtype not in SMALL_INTS:
        return [plan_channel(source, i) for group in groups for i in group]
    plans = []
    for group in groups:
        image = source.bands(group)
        quantizer = make_quantizer(partial(_same, image))  # small ints: from the header alone
        found = np.asarray(quantizer.quantize(image).hist_find().numpy()).reshape(-1, len(group))
        for i in range(len(group)):
            counts = np.pad(found[:, i].astype(np.int64), (0, BINS - found.shape[0]))
            stats = summarize(counts, quantizer, 0)
            lut, codes = code_table(stats, quantizer)
            plans.append(ChannelPlan(quantizer, stats, lut, codes))
    return plans


class Codes:
    """The 8-bit codes of every channel, in scratch tiled TIFFs of one channel group each.

    Uncompressed tiles read back through libvips' tile cache: unlike a memory-mapped .v file,
    the worker's memory does not grow with the image's height.
    """

    def __init__(self) -> None:
        self._files: list[tuple[list[int], pyvips.Image]] = []

    def write(
        self, source: ChannelSource, group: list[int], plans: list[ChannelPlan], path: Path,
        progress: Progress,
    ) -> None:  # fmt: skip
        """Turn the channels of ``group`` into codes in one pass over the source."""
        image = source.bands(group)
        quantizers = {plans[i].quantizer for i in group}
        if len(quantizers) == 1:  # 8/16-bit data: one lookup for every band at once
            tables = np.stack([plans[i].codes for i in group], axis=-1).reshape(1, -1, len(group))
            codes = quantizers.pop().quantize(image).maplut(_uchar_image(tables))
        else:
            bands = []
            for band, i in enumerate(group):
                table = _uchar_image(plans[i].codes.reshape(1, -1))
                bands.append(plans[i].quantizer.quantize(image.extract_band(band)).maplut(table))
            codes = bands[0] if len(bands) == 1 else bands[0].bandjoin(bands[1:])
        codes.set_progress(True)
        codes.signal_connect("eval", lambda _img, p: progress(p.percent / 100))
        try:
            codes.tiffsave(
                str(path), tile=True, tile_width=CODES_TILE[0], tile_height=CODES_TILE[1],
                bigtiff=True,
            )  # fmt: skip
        except pyvips.Error as exc:
            raise CorruptImage(UNREADABLE) from exc
        self._files.append((group, pyvips.Image.new_from_file(str(path))))

    def band(self, index: int) -> pyvips.Image:
        """The codes of channel ``index``."""
        for group, image in self._files:
            if index in group:
                return image.extract_band(group.index(index))
        raise IndexError(f"no codes for channel {index}")

    def all(self) -> pyvips.Image:
        """The codes of every channel as the bands of one image."""
        images = [image for _group, image in self._files]
        return images[0] if len(images) == 1 else images[0].bandjoin(images[1:])


def composite_image(
    codes: pyvips.Image, plans: list[ChannelPlan], channels: list[Channel]
) -> pyvips.Image:
    """Additive blend of every channel in its colour and default window, as 8-bit sRGB.

    The render model (plexzoom.core.render) in two libvips operations: one ``maplut`` turns
    each channel's codes into its windowed intensity (0..1), one ``recomb`` mixes the
    intensities in the channels' colours. A table and a sum per channel took 4x as long.
    """
    strengths, colours = [], []
    for channel, plan in zip(channels, plans, strict=True):
        assert channel.window is not None
        setting = ChannelRender(
            index=channel.index, color="#ffffff", min=channel.window.min, max=channel.window.max
        )
        strengths.append(channel_table(plan.lut, setting)[:, 0] / 255.0)
        colours.append(hex_to_rgb(channel.color))
    table = pyvips.Image.new_from_array(np.stack(strengths, axis=-1).reshape(1, 256, -1))
    mixed = codes.maplut(table).recomb(np.asarray(colours, dtype=np.float64).T.tolist())
    # floor(x + 0.5), clamped by the cast: the rounding of the render model.
    return (mixed + 0.5).floor().cast("uchar").copy(interpretation="srgb")


def convert_channels(
    source: ChannelSource,
    store: StorePyramid,
    options: PyramidOptions,
    progress: Progress,
    scratch: Path,
    channels_per_pass: int = 4,
) -> list[Channel]:
    """Analyse every channel, write its 8-bit pyramid, then the composite's."""
    count = len(source.channels)
    steps = count + 3
    groups = channel_groups(source, channels_per_pass)
    plans = plan_channels(source, groups)
    progress(1 / steps)
    codes = Codes()
    for n, group in enumerate(groups):
        write_progress = _part(_part(progress, 1, steps), n, len(groups))
        codes.write(source, group, plans, scratch / f"codes-{n}.tif", write_progress)
    lossless = PyramidOptions(tile_size=options.tile_size, overlap=options.overlap, format="png")
    channels = []
    for info, plan in zip(source.channels, plans, strict=True):
        i, stats = info.index, plan.stats
        band = codes.band(i).copy(interpretation="b-w")
        pyramid = store(f"c{i}", band, lossless, _part(progress, 2 + i, steps))
        low, high = default_window(stats)
        channels.append(
            Channel(
                index=i,
                name=info.name,
                color=info.color or default_color(i, count),
                dtype=source.dtype,
                wavelength_nm=info.wavelength_nm,
                stats=stats,
                window=Window(min=low, max=high),
                lut=plan.lut,
                pyramid=pyramid.name,
            )
        )
    store(
        "image", composite_image(codes.all(), plans, channels), options,
        _part(progress, 2 + count, steps),
    )  # fmt: skip
    if count >= 3 and any(info.wavelength_nm for info in source.channels):
        store("pca", pca_image(codes.all(), [p.lut for p in plans]), options, lambda _p: None)
    return channels


def _uchar_image(table: np.ndarray) -> pyvips.Image:
    """A lookup table (1 x n, bands last) as a libvips uchar image."""
    return pyvips.Image.new_from_array(table.astype(np.uint8))


def _same(image: pyvips.Image) -> pyvips.Image:
    return image


def _part(progress: Progress, step: int, steps: int) -> Progress:
    """Progress of one step (0..1) as overall progress."""
    return lambda p: progress((step + p) / steps)
