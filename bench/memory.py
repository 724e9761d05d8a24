"""Worker memory and scratch disk: peak RSS of the Dramatiq process tree while converting."""

import shutil
import time
from pathlib import Path
from typing import Any

from stack import Stack, TreeSampler


def measure(tif: Path, size: int, work: Path) -> dict[str, Any]:
    """Convert ``tif`` on a fresh local-folder stack while sampling the worker tree."""
    scratch, tmp = work / f"scratch-{size}", work / f"tmp-{size}"
    scratch.mkdir(parents=True)
    tmp.mkdir(parents=True)
    env = {"PLEXZOOM_SCRATCH_DIR": str(scratch), "TMPDIR": str(tmp)}
    stack = Stack(work / f"data-{size}", env, work / f"stack-memory-{size}.log")
    try:
        root = stack.worker_root()
        time.sleep(1.0)  # let the worker finish importing before the idle reading
        with TreeSampler(root, [scratch]) as sampler:
            idle_rss, procs = sampler.tree_rss()
            with TreeSampler(root, [tmp]) as tmp_sampler:
                _status, seconds = stack.convert(tif, timeout_s=120 + size * size / 2e6)
    finally:
        stack.stop()
        shutil.rmtree(work / f"data-{size}", ignore_errors=True)
    result = {
        "size": size,
        "seconds": seconds,
        "idle_rss": idle_rss,
        "peak_rss": sampler.peak_rss,
        "processes": max(procs, sampler.peak_procs),
        "peak_scratch_bytes": sampler.peak_disk,
        "peak_tmpdir_bytes": tmp_sampler.peak_disk,
        "original_bytes": tif.stat().st_size,
    }
    print(
        f"  {size}x{size}: peak RSS {result['peak_rss'] / 2**20:.0f} MiB "
        f"(idle {idle_rss / 2**20:.0f} MiB, {result['processes']} processes), "
        f"scratch {result['peak_scratch_bytes'] / 2**20:.0f} MiB, {seconds:.1f} s",
        flush=True,
    )
    return result


def run(images: dict[int, Path], work: Path) -> dict[str, Any]:
    """Measure every size; the ratio compares the largest with the smallest."""
    print("\n== worker memory and scratch disk (local-folder backend) ==", flush=True)
    rows = [measure(images[size], size, work) for size in sorted(images)]
    small, big = rows[0], rows[-1]
    return {
        "rows": rows,
        "ratio_peak": big["peak_rss"] / small["peak_rss"],
        "ratio_above_idle": (big["peak_rss"] - big["idle_rss"])
        / max(1, small["peak_rss"] - small["idle_rss"]),
        "pixel_ratio": (big["size"] / small["size"]) ** 2,
        "goal_ratio": 2.0,
    }


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    mib = 2**20
    lines = [
        "Worker memory (Dramatiq process tree, summed RSS) and scratch disk, local folder",
        f"  {'image':>13s} {'peak RSS':>10s} {'idle RSS':>10s} {'scratch':>10s} "
        f"{'original':>10s} {'convert':>8s}",
    ]
    for row in result["rows"]:
        n = row["size"]
        lines.append(
            f"  {f'{n}x{n}':>13s} {row['peak_rss'] / mib:7.0f} MiB {row['idle_rss'] / mib:6.0f} MiB"
            f" {row['peak_scratch_bytes'] / mib:6.0f} MiB {row['original_bytes'] / mib:6.0f} MiB"
            f" {row['seconds']:6.1f} s"
        )
        if row["peak_tmpdir_bytes"]:
            lines.append(f"  {'':13s} + {row['peak_tmpdir_bytes'] / mib:.0f} MiB under TMPDIR")
    small, big = result["rows"][0]["size"], result["rows"][-1]["size"]
    ok = "OK" if result["ratio_peak"] <= result["goal_ratio"] else "MISSED"
    lines.append(
        f"  peak RSS {big}^2 / {small}^2: {result['ratio_peak']:.2f}x for "
        f"{result['pixel_ratio']:.0f}x the pixels (goal <= 2x: {ok}); "
        f"above idle: {result['ratio_above_idle']:.2f}x"
    )
    return lines
