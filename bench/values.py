"""Exact values under the cursor: GET /v1/images/{id}/values on a tiled 8-channel OME-TIFF.

Baseline: libvips alone, on the local file, each channel's page opened once with random access
and ``getpoint`` at the same pixels (the floor: one tile decode per page, no HTTP, no storage).
plexzoom: the HTTP answer of a `make run` stack on each backend (the original in the local
folder, moto's S3 server patched for O(range) ranged GETs as in the tile bench, or SeaweedFS),
for pixels spread over the image so that nearly every lookup reads new tiles. "first" is the
first lookup of the image (it opens the original).
Goal: median and p95 <= 150 ms.
"""

import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import pyvips
from multichannel import CHANNELS, ensure_images
from stack import MotoServer, SeaweedS3, Stack

BUCKET = "plexzoom-bench-values"
GOAL_MS = 150.0
LOOKUPS = 60


def pixels(size: int, count: int) -> list[tuple[int, int]]:
    """Pixels spread over the image (a fixed seed: every side looks up the same ones)."""
    rng = random.Random(11)
    return [(rng.randrange(size), rng.randrange(size)) for _ in range(count)]


def baseline(path: Path, spots: list[tuple[int, int]]) -> list[float]:
    """Milliseconds per pixel for libvips alone, every channel's page opened once."""
    pages = [pyvips.Image.tiffload(str(path), page=i, access="random") for i in range(CHANNELS)]
    times = []
    for x, y in spots:
        start = time.perf_counter()
        [page.getpoint(x, y) for page in pages]
        times.append((time.perf_counter() - start) * 1000)
    return times


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def measure(stack: Stack, path: Path, spots: list[tuple[int, int]]) -> dict[str, Any]:
    """Convert once, then time the first lookup and ``len(spots)`` more."""
    status, _seconds = stack.convert(path, timeout_s=1800)
    image_id = status["id"]
    times = []
    for x, y in spots:
        start = time.perf_counter()
        answer = stack.client.get(f"/v1/images/{image_id}/values", params={"x": x, "y": y})
        times.append((time.perf_counter() - start) * 1000)
        if answer.status_code != 200 or len(answer.json()["values"]) != CHANNELS:
            raise RuntimeError(f"values answered {answer.status_code}: {answer.text[:200]}")
    return {"first_ms": times[0], "lookups_ms": times[1:]}


def run(images: Path, size: int, work: Path, backends: tuple[str, ...]) -> dict[str, Any]:
    """The baseline, then each backend's stack."""
    path = ensure_images(images, size)["pages"]
    spots = pixels(size, LOOKUPS + 1)
    print(f"\n== exact values: {CHANNELS} channels of a tiled {size}² OME-TIFF, {LOOKUPS} "
          "lookups ==", flush=True)  # fmt: skip
    base = baseline(path, spots[1:])
    result: dict[str, Any] = {"size": size, "goal_ms": GOAL_MS, "baseline_ms": base}
    result["backends"] = {}
    servers = {"local": None, "moto": MotoServer, "seaweedfs": SeaweedS3}
    for backend in backends:
        server_type = servers[backend]
        print(f"  {backend}", flush=True)
        log = work / f"{backend}-values.log"
        if server_type is MotoServer:  # stock moto reads the whole object for every range
            server = MotoServer(log, ranged_reads_patch=True)
        else:
            server = server_type(log) if server_type else None
        data = work / f"values-{backend}"
        try:
            stack = Stack(data, server.env(BUCKET) if server else {}, work / "stack-values.log")
            try:
                result["backends"][backend] = measure(stack, path, spots)
            finally:
                stack.stop()
        finally:
            shutil.rmtree(data, ignore_errors=True)
            if server:
                server.stop()
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    base = statistics.median(result["baseline_ms"])
    lines = [
        f"Exact values, tiled {result['size']}² OME-TIFF, {CHANNELS} channels: baseline = "
        f"libvips getpoint on the local file, pages open (median {base:.1f} ms); plexzoom = "
        f"HTTP answer; goal median and p95 <= {result['goal_ms']:.0f} ms"
    ]
    for backend, row in result["backends"].items():
        times = row["lookups_ms"]
        median, high = statistics.median(times), p95(times)
        ok = "OK" if high <= result["goal_ms"] else "MISSED"
        lines.append(
            f"  {backend:10s} first {row['first_ms']:6.1f} ms   median {median:6.1f} ms   "
            f"p95 {high:6.1f} ms   {median / base:.1f}x baseline   {ok}"
        )
    return lines
