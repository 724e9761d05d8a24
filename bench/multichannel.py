"""Multi-channel conversion: plexzoom end to end against a bare pyvips loop, two layouts."""

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyvips
import tifffile
from stack import Stack, TreeSampler

CHANNELS = 8
VERSION = 1
# The bare baseline: one 8-bit pyramid per channel (lossless PNG tiles in one zip, as plexzoom
# writes them), cast with a fixed shift: no statistics, no composite.
_BARE = """
import sys, time, pyvips
path, out, count, layout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.monotonic()
for i in range(count):
    if layout == "pages":
        band = pyvips.Image.new_from_file(path, page=i, access="sequential")
    else:
        band = pyvips.Image.new_from_file(path, access="sequential")[i]
    (band >> 4).cast("uchar").dzsave(f"{out}/c{i}.zip", compression=0, tile_size=254, overlap=1,
                                     suffix=".png[compression=1]")
print(time.monotonic() - start)
"""


def channel_plane(size: int, index: int) -> np.ndarray:
    """A uint16 fluorescence-like plane: blobs of signal over a dim noisy background."""
    xyz = pyvips.Image.xyz(size, size)
    x, y = xyz[0], xyz[1]
    period = 97 + 31 * index
    blobs = ((x * (360 / period)).sin() * (y * (360 / (period + 13))).sin()).abs() ** 4 * 3000
    noise = pyvips.Image.gaussnoise(size, size, sigma=40, mean=300 + 50 * index)
    return np.asarray((blobs + noise).cast("ushort").numpy())


def ensure_images(folder: Path, size: int) -> dict[str, Path]:
    """Generate (once) the 8-channel OME-TIFFs: channels as pages, and as 8 samples of one page."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        layout: folder / f"channels-v{VERSION}-{size}-{layout}.ome.tif"
        for layout in ("pages", "interleaved")
    }
    if all(p.exists() for p in paths.values()):
        return paths
    start = time.monotonic()
    planes = [channel_plane(size, i) for i in range(CHANNELS)]
    names = {"Channel": {"Name": [f"Marker {i + 1}" for i in range(CHANNELS)]}}
    options = {"tile": (256, 256), "compression": "zlib", "ome": True}
    tifffile.imwrite(paths["pages"], np.stack(planes), metadata={"axes": "CYX", **names},
                     **options)  # fmt: skip
    tifffile.imwrite(paths["interleaved"], np.stack(planes, axis=-1),
                     metadata={"axes": "YXC", **names}, photometric="minisblack",
                     planarconfig="contig", **options)  # fmt: skip
    print(f"  generated 8-channel {size}² images in {time.monotonic() - start:.0f} s", flush=True)
    return paths


def bare_loop(path: Path, layout: str, out: Path) -> float:
    """Seconds for the bare per-channel pyramid loop, in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    done = subprocess.run(
        [sys.executable, "-c", _BARE, str(path), str(out), str(CHANNELS), layout],
        capture_output=True, text=True, timeout=3600, check=True,
    )  # fmt: skip
    shutil.rmtree(out, ignore_errors=True)
    return float(done.stdout.strip().splitlines()[-1])


class Converter:
    """A local-folder plexzoom stack that converts a file and samples its worker tree's RSS."""

    def __init__(self, work: Path, tag: str) -> None:
        self.folder = work / f"mc-{tag}"
        self.stack = Stack(self.folder, {}, work / f"stack-mc-{tag}.log")
        self.root = self.stack.worker_root()

    def convert(self, path: Path) -> tuple[float, int]:
        """Seconds from 202 to ready, and the worker tree's peak RSS meanwhile."""
        with TreeSampler(self.root, []) as sampler:
            _status, seconds = self.stack.convert(path, timeout_s=1800)
        return seconds, sampler.peak_rss

    def close(self) -> None:
        self.stack.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def memory_rows(images: Path, sizes: list[int], work: Path) -> list[dict[str, int]]:
    """Worker tree peak RSS converting the pages layout at each size (one run each)."""
    print(f"  worker memory, pages layout, sizes {sizes}", flush=True)
    rows = []
    for size in sizes:
        converter = Converter(work, f"mem{size}")
        try:
            seconds, peak = converter.convert(ensure_images(images, size)["pages"])
        finally:
            converter.close()
        print(f"    {size}²: {seconds:.1f} s, worker peak RSS {peak / 2**20:.0f} MiB", flush=True)
        rows.append({"size": size, "peak_rss": peak})
    return rows


def run(images: Path, size: int, runs: int, work: Path, memory_sizes: list[int]) -> dict[str, Any]:
    """Both layouts: bare loop and plexzoom, alternating so both see the same machine load;
    medians and ratios; then the worker's memory against the image size."""
    print(f"\n== multi-channel: {CHANNELS} x uint16 {size}², {runs} runs each ==", flush=True)
    result: dict[str, Any] = {"size": size, "channels": CHANNELS, "runs": runs, "goal_ratio": 1.5}
    for layout, path in ensure_images(images, size).items():
        print(f"  {layout}: bare pyvips loop (one 8-bit PNG pyramid per channel) and plexzoom "
              "(statistics, channel pyramids, composite; local folder), alternating",
              flush=True)  # fmt: skip
        bare, ours, peak = [], [], 0
        converter = Converter(work, layout)
        try:
            for _ in range(runs):
                bare.append(bare_loop(path, layout, work / "mc-bare"))
                seconds, rss = converter.convert(path)
                ours.append(seconds)
                peak = max(peak, rss)
                print(f"    bare {bare[-1]:.2f} s   plexzoom {seconds:.2f} s   "
                      f"worker peak RSS {rss / 2**20:.0f} MiB", flush=True)  # fmt: skip
        finally:
            converter.close()
        result[layout] = {
            "bare_s": bare, "plexzoom_s": ours, "peak_rss": peak,
            "ratio": statistics.median(ours) / statistics.median(bare),
        }  # fmt: skip
    result["memory"] = memory_rows(images, memory_sizes, work)
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    lines = [f"multi-channel {result['channels']} x uint16 {result['size']}² (medians):"]
    for layout in ("pages", "interleaved"):
        row = result[layout]
        ok = "OK" if row["ratio"] <= result["goal_ratio"] else "MISSED"
        lines.append(
            f"  {layout:12s} bare loop {statistics.median(row['bare_s']):6.2f} s   plexzoom "
            f"{statistics.median(row['plexzoom_s']):6.2f} s   ratio {row['ratio']:.2f}x "
            f"(goal <= {result['goal_ratio']}x: {ok})   worker peak RSS "
            f"{row['peak_rss'] / 2**20:.0f} MiB"
        )
    rows = result["memory"]
    peaks = "   ".join(f"{r['size']}²: {r['peak_rss'] / 2**20:.0f} MiB" for r in rows)
    growth = rows[-1]["peak_rss"] / rows[0]["peak_rss"]
    pixels = (rows[-1]["size"] / rows[0]["size"]) ** 2
    lines.append(f"  worker peak RSS, pages: {peaks}   ({growth:.2f}x for {pixels:.0f}x pixels)")
    return lines
