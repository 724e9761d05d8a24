"""Conversion speed: bare pyvips dzsave vs plexzoom (S3 and local-folder backends)."""

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stack import MotoServer, Stack

# What the bare baselines run in a fresh interpreter: open + dzsave with libvips' defaults
# (DZ layout, one file per tile), or the same into one uncompressed zip as plexzoom writes.
_BARE = """
import sys, time, pyvips
start = time.monotonic()
image = pyvips.Image.new_from_file(sys.argv[1], access="sequential")
extra = {"compression": 0} if sys.argv[2].endswith(".zip") else {}
image.dzsave(sys.argv[2], tile_size=254, overlap=1, suffix=".jpeg[Q=85]", **extra)
print(time.monotonic() - start)
"""
STAGES = ("queued", "reading", "building pyramid", "storing pyramid")


def bare_dzsave(tif: Path, out_dir: Path, to_zip: bool) -> tuple[float, float]:
    """One bare dzsave in a fresh process: (open+dzsave seconds, whole-process seconds)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    target = out_dir / ("image.zip" if to_zip else "image")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _BARE, str(tif), str(target)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    wall = time.monotonic() - start
    shutil.rmtree(out_dir, ignore_errors=True)
    return float(done.stdout.strip().splitlines()[-1]), wall


def stack_conversions(
    stack: Stack, tif: Path, runs: int, timeout_s: float
) -> tuple[list[float], list[dict[str, float]]]:
    """Upload ``tif`` ``runs`` times: seconds from each 202 to 'ready', and per-stage seconds."""
    times, stages = [], []
    for _ in range(runs):
        _status, seconds, staged = stack.convert_staged(tif, timeout_s)
        times.append(seconds)
        stages.append(staged)
        parts = ", ".join(f"{k} {v:.2f}" for k, v in staged.items())
        print(f"    {seconds:.2f} s  ({parts})", flush=True)
    return times, stages


def median_stages(stages: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds of every stage over the runs."""
    names = [n for n in STAGES if any(n in s for s in stages)]
    return {n: statistics.median(s.get(n, 0.0) for s in stages) for n in names}


def run(tif: Path, size: int, runs: int, work: Path) -> dict[str, Any]:
    """Time bare dzsave (tree and zip), plexzoom on S3 (moto) and on the local folder."""
    timeout_s = 60 + size * size / 4e6  # generous: ~10x the expected time
    print(f"\n== conversion speed: {size}x{size}, {runs} runs each ==", flush=True)
    bare: dict[str, list[float]] = {"bare": [], "bare_zip": [], "bare_process": []}
    for label, to_zip in (("bare", False), ("bare_zip", True)):
        where = "into one zip" if to_zip else "to a folder tree (libvips default)"
        print(f"  (a) bare pyvips dzsave {where}, fresh process each run", flush=True)
        for _ in range(runs):
            seconds, wall = bare_dzsave(tif, work / "bare", to_zip)
            bare[label].append(seconds)
            if not to_zip:
                bare["bare_process"].append(wall)
            print(f"    {seconds:.2f} s (process {wall:.2f} s)", flush=True)

    print("  (b) plexzoom, S3 backend (moto server), 202 -> ready", flush=True)
    moto = MotoServer(work / "moto-convert.log")
    try:
        env = moto.env("plexzoom-bench")
        stack = Stack(work / "s3-data", env, work / "stack-convert-s3.log")
        try:
            s3, s3_stages = stack_conversions(stack, tif, runs, timeout_s)
        finally:
            stack.stop()
    finally:
        moto.stop()

    print("  (c) plexzoom, local-folder backend, 202 -> ready", flush=True)
    stack = Stack(work / "local-data", {}, work / "stack-convert-local.log")
    try:
        local, local_stages = stack_conversions(stack, tif, runs, timeout_s)
    finally:
        stack.stop()
        shutil.rmtree(work / "local-data", ignore_errors=True)

    med = {k: statistics.median(v) for k, v in bare.items()}
    med |= {"s3": statistics.median(s3), "local": statistics.median(local)}
    return {
        "size": size,
        "runs": runs,
        **{f"{k}_s": v for k, v in bare.items()},
        "s3_s": s3,
        "local_s": local,
        "median_s": med,
        "median_stages_s": {"s3": median_stages(s3_stages), "local": median_stages(local_stages)},
        "ratio_s3_over_bare": med["s3"] / med["bare"],
        "ratio_local_over_bare": med["local"] / med["bare"],
        "ratio_s3_over_bare_zip": med["s3"] / med["bare_zip"],
        "ratio_local_over_bare_zip": med["local"] / med["bare_zip"],
        "goal_ratio": 1.5,
    }


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    med, n = result["median_s"], result["size"]
    ok = "OK" if result["ratio_s3_over_bare"] <= result["goal_ratio"] else "MISSED"
    stages = result["median_stages_s"]

    def staged(backend: str) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in stages[backend].items())

    return [
        f"Conversion {n}x{n} RGB JPEG-TIFF, median of {result['runs']} runs"
        " (ratios: plexzoom / bare tree, plexzoom / bare zip)",
        f"  {'(a) bare pyvips dzsave, folder tree':40s} {med['bare']:7.2f} s",
        f"  {'(a2) bare pyvips dzsave, one zip':40s} {med['bare_zip']:7.2f} s",
        f"  {'(b) plexzoom, S3 (moto), 202->ready':40s} {med['s3']:7.2f} s   "
        f"{result['ratio_s3_over_bare']:.2f}x  {result['ratio_s3_over_bare_zip']:.2f}x   "
        f"goal <= 1.5x bare: {ok}",
        f"      stages: {staged('s3')}",
        f"  {'(c) plexzoom, local folder, 202->ready':40s} {med['local']:7.2f} s   "
        f"{result['ratio_local_over_bare']:.2f}x  {result['ratio_local_over_bare_zip']:.2f}x",
        f"      stages: {staged('local')}",
    ]
