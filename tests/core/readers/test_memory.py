"""Streaming a TIFF channel keeps memory bounded by libvips, not by the image size."""

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest

from plexzoom.core.readers import open_source
from tests.core.readers.files import write_multipage

SIDE, PAGES = 8000, 3  # 3 x 128 MB of uint16 pixels
LIMIT = 100 * 1024**2


def peak_rss_during(work: Callable[[], object]) -> tuple[int, object]:
    """Run ``work`` while sampling this process's resident memory; return (peak growth, result)."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    peak, done = baseline, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return max(peak, process.memory_info().rss) - baseline, result


def expected_mean(page: int) -> float:
    """Mean of page ``page`` of write_multipage: (x + 3 y) & 0xffff, y counted over all pages."""
    x = np.arange(SIDE, dtype=np.int64)
    total = 0
    for top in range(page * SIDE, (page + 1) * SIDE, 1000):
        y = np.arange(top, top + 1000, dtype=np.int64)
        total += int(((x[np.newaxis, :] + 3 * y[:, np.newaxis]) & 0xFFFF).sum())
    return total / SIDE**2


@pytest.mark.slow
def test_channel_of_a_large_tiff_streams(tmp_path: Path) -> None:
    path = write_multipage(tmp_path / "large.tif", SIDE, SIDE, PAGES)
    with open_source(path) as source:
        assert (source.width, source.height, len(source.channels)) == (SIDE, SIDE, PAGES)
        growth, mean = peak_rss_during(lambda: source.channel(2).avg())
    assert float(mean) == pytest.approx(expected_mean(page=2))  # type: ignore[arg-type]
    assert growth < LIMIT, f"RSS grew by {growth / 1024**2:.0f} MB"
