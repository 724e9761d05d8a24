"""Multi-channel conversion: plexzoom end to end against libvips alone making the same outputs."""

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
from stack import Stack, TreeSampler, settle

CHANNELS = 8
VERSION = 1
# The baseline: the fastest way libvips alone makes the same outputs as plexzoom. Pass 1: a
# histogram per channel (hist_find; the 0.1/99.9 percentile window from it). Pass 2: every
# channel into 8-bit codes in one uncompressed .v scratch file (memory-mapped when read back).
# Then one lossless PNG pyramid per channel (compression=1, as plexzoom) and the composite, an
# additive colour mix (one recomb) as a JPEG pyramid with Q=85 given as an argument.
_BARE = """
import sys, time, numpy as np, pyvips
path, out, count, layout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.monotonic()
def channels():
    if layout == "pages":
        pages = [pyvips.Image.new_from_file(path, page=i, access="sequential")
                 for i in range(count)]
        return pages[0].bandjoin(pages[1:])
    return pyvips.Image.new_from_file(path, access="sequential")
hist = np.asarray(channels().hist_find().numpy()).reshape(-1, count)
cdf = np.cumsum(hist, axis=0) / hist.sum(axis=0)
low = np.argmax(cdf >= 0.001, axis=0)
high = np.maximum(np.argmax(cdf >= 0.999, axis=0), low + 1)
scale = 255.0 / (high - low)
codes = ((channels() - low.tolist()) * scale.tolist()).cast("uchar")
codes.write_to_file(f"{out}/codes.v")
codes = pyvips.Image.new_from_file(f"{out}/codes.v")
common = dict(container="zip", compression=0, tile_size=254, overlap=1, depth="onepixel")
for i in range(count):
    codes[i].copy(interpretation="b-w").dzsave(f"{out}/c{i}.zip", suffix=".png[compression=1]",
                                                **common)
colours = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1],
                    [1, 0.5, 0], [0.5, 0, 1]])[:count].T
composite = codes.recomb(colours.tolist()).cast("uchar").copy(interpretation="srgb")
composite.dzsave(f"{out}/image.zip", Q=85, keep="none", **common)
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
    """Seconds for libvips alone (the baseline above), in a fresh process."""
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


def memory_rows(
    images: Path, sizes: list[int], work: Path, measured: dict[int, int]
) -> list[dict[str, int]]:
    """Worker tree peak RSS converting the pages layout at each size (one run each); sizes in
    ``measured`` (size -> peak of the timed runs) are not converted again."""
    print(f"  worker memory, pages layout, sizes {sizes}", flush=True)
    rows = []
    for size in sizes:
        if size in measured:
            print(f"    {size}²: worker peak RSS {measured[size] / 2**20:.0f} MiB (timed runs)")
            rows.append({"size": size, "peak_rss": measured[size]})
            continue
        converter = Converter(work, f"mem{size}")
        try:
            seconds, peak = converter.convert(ensure_images(images, size)["pages"])
        finally:
            converter.close()
        print(f"    {size}²: {seconds:.1f} s, worker peak RSS {peak / 2**20:.0f} MiB", flush=True)
        rows.append({"size": size, "peak_rss": peak})
    return rows


def run(images: Path, size: int, runs: int, work: Path, memory_sizes: list[int]) -> dict[str, Any]:
    """Both layouts: libvips alone and plexzoom, alternating so both see the same machine load;
    medians and ratios; then the worker's memory against the image size."""
    print(f"\n== multi-channel: {CHANNELS} x uint16 {size}², {runs} runs each ==", flush=True)
    result: dict[str, Any] = {"size": size, "channels": CHANNELS, "runs": runs, "goal_ratio": 1.2}
    for layout, path in ensure_images(images, size).items():
        print(f"  {layout}: libvips alone (histograms, codes, channel pyramids, composite) and "
              "plexzoom (the same; local folder), alternating", flush=True)  # fmt: skip
        bare, ours, peak = [], [], 0
        converter = Converter(work, layout)
        try:
            for _ in range(runs):
                settle()
                bare.append(bare_loop(path, layout, work / "mc-bare"))
                settle()
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
    measured = {size: result["pages"]["peak_rss"]}
    result["memory"] = memory_rows(images, memory_sizes, work, measured)
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    lines = [f"multi-channel {result['channels']} x uint16 {result['size']}² (medians):"]
    for layout in ("pages", "interleaved"):
        row = result[layout]
        ok = "OK" if row["ratio"] <= result["goal_ratio"] else "MISSED"
        lines.append(
            f"  {layout:12s} libvips alone {statistics.median(row['bare_s']):6.2f} s   plexzoom "
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
