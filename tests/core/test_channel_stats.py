"""Channel statistics and the 8-bit code table, checked against numpy on generated data."""

from functools import partial

import numpy as np
import pytest
import pyvips

from plexzoom.core.channel_stats import (
    PERCENTILES,
    code_table,
    default_window,
    histogram,
    make_quantizer,
    summarize,
)

PCTS = (0.1, 1, 50, 99, 99.9)
KEYS = dict(zip(PCTS, PERCENTILES, strict=True))


def stats_of(array: np.ndarray):  # type: ignore[no-untyped-def]
    """Statistics, quantizer and code table of a 2-D array, as the worker computes them."""
    opener = partial(pyvips.Image.new_from_array, array)
    quantizer = make_quantizer(opener)
    counts, non_finite = histogram(opener(), quantizer)
    stats = summarize(counts, quantizer, non_finite)
    lut, codes = code_table(stats, quantizer)
    return stats, quantizer, lut, codes


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
def test_small_integers_are_exact(dtype: str) -> None:
    """Up to 16 bits every value has its own bin: min, max, mean, percentiles match numpy."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    array = rng.integers(info.min, info.max, (300, 400), endpoint=True).astype(dtype)
    stats, quantizer, _, _ = stats_of(array)
    assert quantizer.exact
    assert (stats.min, stats.max) == (array.min(), array.max())
    assert stats.mean == pytest.approx(array.mean(), rel=1e-9)
    want = np.percentile(array, PCTS, method="inverted_cdf")
    assert [stats.percentiles[KEYS[p]] for p in PCTS] == pytest.approx(want)
    assert sum(stats.histogram) == stats.count == array.size


@pytest.mark.parametrize("dtype", ["uint32", "int32", "float32", "float64"])
def test_wide_types_are_within_one_bin(dtype: str) -> None:
    """32-bit and float data: the finite range in 65536 bins, percentiles within a bin or two."""
    rng = np.random.default_rng(4)
    array = rng.gamma(2.0, 3e5, (200, 300)) - (1e5 if dtype.startswith(("int", "f")) else 0)
    array = array.astype(dtype)
    stats, _, _, _ = stats_of(array)
    step = (float(array.max()) - float(array.min())) / 65535
    assert stats.min == pytest.approx(float(array.min()), abs=step)
    assert stats.max == pytest.approx(float(array.max()), abs=step)
    assert stats.mean == pytest.approx(float(array.mean()), abs=step)
    for p in PCTS:
        want = np.percentile(array, p, method="inverted_cdf")
        assert stats.percentiles[KEYS[p]] == pytest.approx(want, abs=2 * step)


def test_nan_and_inf_are_left_out() -> None:
    """NaN and ±Inf are counted apart and change no statistic."""
    rng = np.random.default_rng(5)
    array = rng.normal(100, 10, (200, 200)).astype(np.float32)
    clean = array.copy()
    array[::7, ::5] = np.nan
    array[3, 3], array[4, 4] = np.inf, -np.inf
    stats, _, _, _ = stats_of(array)
    finite = array[np.isfinite(array)]
    assert stats.non_finite == array.size - finite.size
    assert stats.count == finite.size
    assert stats.min == pytest.approx(finite.min(), abs=1e-3)
    assert stats.max == pytest.approx(finite.max(), abs=1e-3)
    assert clean.size == array.size


def test_all_nan_gives_empty_statistics() -> None:
    """A channel with no number at all still converts, with zero counts."""
    stats, _, lut, _ = stats_of(np.full((50, 60), np.nan, dtype=np.float32))
    assert stats.count == 0 and stats.non_finite == 3000
    assert np.all(np.diff(lut) > 0)


def test_the_code_table_keeps_dim_structure_beside_bright_outliers() -> None:
    """12-bit data in 16 bits with a few saturated pixels: most codes go to the dim range."""
    rng = np.random.default_rng(6)
    array = rng.gamma(3.0, 200, (400, 400)).clip(0, 4095).astype(np.uint16)
    array[:3, :3] = 65535
    stats, _, lut, codes = stats_of(array)
    assert stats.max == 65535
    lut_array = np.asarray(lut)
    assert np.all(np.diff(lut_array) > 0)
    assert (lut_array <= stats.percentiles["99.9"]).sum() >= 200
    # A naive full-range mapping would give the dim range's top code 15; ours gives it ~240.
    knee = stats.percentiles["99.9"]
    assert codes[int(knee)] >= 235
    # Round trip: each dim native value comes back within one code step.
    values = np.arange(0, int(knee), 37)
    back = lut_array[codes[values]]
    step = np.diff(lut_array)[:239].max()
    assert np.all(np.abs(back - values) <= step)


def test_eight_bit_data_keeps_one_code_per_value() -> None:
    """uint8 channels map code k to value k: nothing is lost."""
    array = np.arange(256, dtype=np.uint8).reshape(16, 16)
    _, _, lut, codes = stats_of(array)
    assert np.allclose(lut, np.arange(256), atol=1e-4)
    assert list(codes[:256]) == list(range(256))


def fluorescence(seed: int, shape: tuple[int, int] = (400, 500)) -> np.ndarray:
    """A uint16 channel: 90 % dark background N(300, 40), 10 % signal between 1000 and 4000."""
    rng = np.random.default_rng(seed)
    plane = rng.normal(300, 40, shape)
    signal = rng.random(shape) < 0.1
    plane[signal] = rng.uniform(1000, 4000, int(signal.sum()))
    return np.clip(plane, 0, 65535).astype(np.uint16)


def brightness(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """A linear window's display level (0..255) of each pixel."""
    return np.clip((plane.astype(np.float64) - low) / (high - low), 0, 1) * 255


def test_the_default_window_starts_above_the_background() -> None:
    """The background and its noise are found, and the window keeps 97 % of the dark field
    black; the old default (the 0.1th percentile) left it grey: with 8 channels added up, a
    veil over the whole image (the control)."""
    plane = fluorescence(1)
    stats, *_ = stats_of(plane)
    assert stats.background is not None and stats.noise is not None
    assert abs(stats.background - 300) <= 5 and abs(stats.noise - 40) <= 6
    low, high = default_window(stats)
    assert high == stats.percentiles["99.9"]
    dark = plane[plane < 700]
    assert (brightness(dark, low, high) == 0).mean() >= 0.97
    assert 8 * brightness(dark, low, high).mean() < 2  # eight such channels: still black
    old = stats.percentiles["0.1"]
    assert 8 * brightness(dark, old, high).mean() > 40  # the veil the old default left (67)


@pytest.mark.parametrize(
    "plane",
    [
        np.tile(np.arange(0, 4000, 8, dtype=np.uint16), (300, 1)),  # a ramp: every value as common
        (255 - fluorescence(2) // 16).astype(np.uint8),  # bright field: the peak is the light side
    ],
    ids=["ramp", "bright-field"],
)
def test_no_dark_peak_keeps_the_percentile_window(plane: np.ndarray) -> None:
    """Without a dark background peak the window stays 0.1th to 99.9th percentile."""
    stats, *_ = stats_of(plane)
    assert stats.background is None
    assert default_window(stats) == (stats.percentiles["0.1"], stats.percentiles["99.9"])


def test_statistics_of_older_manifests_keep_their_window() -> None:
    """Statistics written before the background was measured open as they did."""
    stats, *_ = stats_of(fluorescence(3))
    older = stats.model_copy(update={"background": None, "noise": None})
    assert default_window(older) == (stats.percentiles["0.1"], stats.percentiles["99.9"])
