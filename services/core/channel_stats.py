"""Per-channel statistics and the 8-bit display mapping of one channel.

Every channel is reduced to a 65536-bin histogram in one pass (two more for 32-bit and float
data, which need their range first). Statistics, the display window and the lookup table that
turns native values into 8-bit codes all come from that histogram.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyvips
from pydantic import BaseModel

BINS = 65536
PERCENTILES = ("0.1", "1", "50", "99", "99.9")
_SMALL_INTS = {"uchar": 0, "char": 128, "ushort": 0, "short": 32768}  # offsets to unsigned
# Returns a fresh lazy image of one channel: a sequential image can be read only once.
ChannelOpener = Callable[[], pyvips.Image]


class ChannelStats(BaseModel):
    """Statistics of one channel in native units; NaN and ±Inf are left out."""

    min: float
    max: float
    mean: float
    percentiles: dict[str, float]
    histogram: list[int]  # 256 bins spanning [min, max]
    count: int
    non_finite: int = 0
    # The most common value (the dark field of a fluorescence channel) and the spread of the
    # values around it, from its darker half (what lies above it may be signal); None when the
    # histogram has no dark peak (a photograph, a ramp).
    background: float | None = None
    noise: float | None = None


@dataclass(frozen=True)
class Quantizer:
    """Maps native values onto histogram bins: bin = round((v - low) * scale)."""

    low: float
    scale: float
    exact: bool  # integer data of at most 16 bits: one bin per value

    def value(self, bins: np.ndarray) -> np.ndarray:
        """Native value at the centre of each bin."""
        return self.low + bins / self.scale

    def quantize(self, image: pyvips.Image) -> pyvips.Image:
        """The image as bin numbers (ushort); non-finite values go to bin 0."""
        if self.exact:
            return (image + (-self.low)).cast("ushort") if self.low else image.cast("ushort")
        finite = _finite(image)
        bins = ((image - self.low) * self.scale + 0.5).cast("ushort")  # cast clamps into range
        return finite.ifthenelse(bins, 0)


def _finite(image: pyvips.Image) -> pyvips.Image:
    """255 where a float pixel is a number (not NaN, not ±Inf), else 0."""
    if image.format not in ("float", "double", "complex", "dpcomplex"):
        return (image == image).copy()
    return (image == image) & (image.abs() < math.inf)


def make_quantizer(open_channel: ChannelOpener) -> Quantizer:
    """The quantizer for a channel: exact for small ints, else its finite range in 65536 bins."""
    image = open_channel()
    if image.format in _SMALL_INTS:
        return Quantizer(low=-_SMALL_INTS[image.format], scale=1.0, exact=True)
    finite = _finite(image)
    low = finite.ifthenelse(image, math.inf if _is_float(image) else 2**40).min()
    image = open_channel()
    finite = _finite(image)
    high = finite.ifthenelse(image, -math.inf if _is_float(image) else -(2**40)).max()
    if not math.isfinite(low) or not math.isfinite(high) or abs(low) > 1e300:
        low, high = 0.0, 1.0  # no finite pixel at all
    span = high - low
    return Quantizer(low=low, scale=(BINS - 1) / span if span > 0 else 1.0, exact=False)


def _is_float(image: pyvips.Image) -> bool:
    return bool(image.format in ("float", "double"))


def histogram(image: pyvips.Image, quantizer: Quantizer) -> tuple[np.ndarray, int]:
    """Counts per bin (65536) of the finite pixels, and the number of non-finite ones."""
    bins = quantizer.quantize(image)
    if quantizer.exact:
        counts = np.asarray(bins.hist_find().numpy()).reshape(-1)[:BINS].astype(np.int64)
        return np.pad(counts, (0, BINS - counts.size)), 0
    ones = _finite(image).ifthenelse(1, 0).cast("uchar")
    counts = np.asarray(ones.hist_find_indexed(bins).numpy()).reshape(-1).astype(np.int64)
    counts = np.pad(counts, (0, BINS - counts.size))
    return counts, image.width * image.height - int(counts.sum())


def summarize(counts: np.ndarray, quantizer: Quantizer, non_finite: int) -> ChannelStats:
    """Min, max, mean, percentiles and a 256-bin histogram from the fine histogram."""
    total = int(counts.sum())
    if total == 0:
        zeros = dict.fromkeys(PERCENTILES, 0.0)
        return ChannelStats(
            min=0,
            max=0,
            mean=0,
            percentiles=zeros,
            histogram=[0] * 256,
            count=0,
            non_finite=non_finite,
        )
    used = np.nonzero(counts)[0]
    first, last = int(used[0]), int(used[-1])
    values = quantizer.value(np.arange(BINS, dtype=np.float64))
    cdf = np.cumsum(counts)
    percentiles = {
        p: float(values[min(int(np.searchsorted(cdf, float(p) / 100 * total)), last)])
        for p in PERCENTILES
    }
    span = np.arange(first, last + 1)
    coarse, _ = np.histogram(span, bins=256, range=(first, last + 1), weights=counts[span])
    background, noise = _background(counts, cdf, values, first, last, coarse)
    return ChannelStats(
        min=float(values[first]),
        max=float(values[last]),
        mean=float((counts * values).sum() / total),
        percentiles=percentiles,
        histogram=[int(c) for c in coarse],
        count=total,
        non_finite=non_finite,
        background=background,
        noise=noise,
    )


# For a normal distribution the share of values below mean - sigma, over the share below the
# mean: 0.1587 / 0.5.
_ONE_SIGMA_BELOW = 0.3173
# A background is a peak: its 1/256 of the range holds this many times the average share.
_PEAKED = 4.0


def _background(
    counts: np.ndarray,
    cdf: np.ndarray,
    values: np.ndarray,
    first: int,
    last: int,
    coarse: np.ndarray,
) -> tuple[float | None, float | None]:
    """The histogram's mode and a noise estimate from the darker side of its peak: the value
    below which 31.73 % of the pixels up to the mode lie is one sigma below it, if the
    background is roughly normal (at least one bin). None, None unless the mode is a clear
    peak in the darker half of the pixels."""
    mode = first + int(np.argmax(counts[first : last + 1]))
    below_mode = cdf[mode] - counts[mode] / 2
    used = coarse[coarse > 0]
    if below_mode > cdf[-1] / 2 or coarse.max() < _PEAKED * used.mean():
        return None, None
    lower = int(np.searchsorted(cdf, _ONE_SIGMA_BELOW * below_mode))
    step = values[1] - values[0]
    return float(values[mode]), float(max(values[mode] - values[min(lower, mode)], step))


def default_window(stats: ChannelStats) -> tuple[float, float]:
    """The window a channel opens with: from just above its background (background + 2 noise,
    so that the dark field of every channel stays black when channels are mixed, rather than
    adding up to a grey veil) to its 99.9th percentile. Never above the 99th percentile, and
    the 0.1th when the statistics have no background (older manifests) or it leaves no room."""
    low, high = stats.percentiles["0.1"], stats.percentiles["99.9"]
    if stats.background is not None and stats.noise is not None:
        above = min(stats.background + 2 * stats.noise, stats.percentiles["99"])
        if low < above < high:
            low = above
    return low, high


def code_table(stats: ChannelStats, quantizer: Quantizer) -> tuple[list[float], np.ndarray]:
    """The 8-bit mapping: native value of each code (256) and the code of each bin (65536).

    Codes 0..239 span [min, p99.9] linearly and codes 240..255 span (p99.9, max] on a log
    scale, so a few very bright pixels do not crush the dim structure into a handful of codes.
    Integer data with at most 256 distinct steps in range is mapped one code per value.
    """
    low, high, knee = stats.min, stats.max, stats.percentiles["99.9"]
    if quantizer.exact and high - low < 256:
        lut = low + np.arange(256, dtype=np.float64)
    elif knee >= high or knee <= low:
        lut = np.linspace(low, high, 256)
    else:
        lower = np.linspace(low, knee, 240)
        upper = knee + np.expm1(np.linspace(0, np.log1p(high - knee), 17)[1:])
        lut = np.concatenate([lower, upper])
    lut = np.maximum.accumulate(lut)
    lut = lut + np.arange(256) * 1e-9 * max(1.0, abs(high))  # strictly increasing
    values = quantizer.value(np.arange(BINS, dtype=np.float64))
    midpoints = (lut[1:] + lut[:-1]) / 2
    codes = np.searchsorted(midpoints, values).astype(np.uint8)
    return [float(v) for v in lut], codes
