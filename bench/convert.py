"""RGB conversion speed: plexzoom (upload answered -> ready) against libvips alone, per backend.

The baseline is the fastest way libvips makes the same pyramid: the same 254 px tiles, overlap 1,
JPEG quality 85 and one uncompressed zip, with the dzsave arguments and access mode that
bench/dzsave_options.py measured fastest (never plexzoom's own settings); on S3 it is followed by
boto3's ``upload_file`` of the zip to the same server. Baseline and plexzoom runs alternate, so
both see the same machine load, and each starts once the CPUs are idle (stack.settle).
"""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stack import MotoServer, SeaweedS3, Stack, settle

# argv: image, zip, access, endpoint ("" for none), bucket. Prints open -> (uploaded) seconds.
_BASELINE = r"""
import sys, time, boto3, pyvips
src, out, access, endpoint, bucket = sys.argv[1:6]
client = boto3.client("s3", endpoint_url=endpoint) if endpoint else None
start = time.monotonic()
image = pyvips.Image.new_from_file(src, access=access)
image.dzsave(out, container="zip", compression=0, tile_size=254, overlap=1, depth="onepixel",
             Q=85, keep="none")
if client is not None:
    client.upload_file(out, bucket, "baseline/image.zip")
print(time.monotonic() - start)
"""
BUCKET = "plexzoom-bench"
# Status polls of the big conversions: every poll is a manifest read, and 20 a second (at 50 ms)
# took a visible share of moto's single process away from the conversion it was timing. The
# time to ready comes from the manifest's commit time, not from the poll that saw it, so the
# benchmark can poll as a browser does, once a second.
POLL_S = 1.0
GOAL = 1.2
BACKENDS = ("local", "moto", "seaweedfs")
SMALL_GOAL_S = 0.5


def baseline(image: Path, access: str, work: Path, s3: dict[str, str]) -> float:
    """One baseline run in a fresh process (interpreter start and imports not counted)."""
    out = work / "baseline.zip"
    out.unlink(missing_ok=True)
    endpoint = s3.get("PLEXZOOM_S3_ENDPOINT_URL", "")
    done = subprocess.run(
        [sys.executable, "-c", _BASELINE, str(image), str(out), access, endpoint, BUCKET],
        capture_output=True, text=True, timeout=3600, check=True, env={**os.environ, **s3},
    )  # fmt: skip
    out.unlink(missing_ok=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(
    stack: Stack, images: dict[str, Path], access: str, runs: int, work: Path, s3: dict[str, str]
) -> dict[str, Any]:
    """For each image: baseline and plexzoom alternating, ``runs`` times."""
    rows = {}
    for label, image in images.items():
        base, ours = [], []
        for _ in range(runs):
            settle()
            base.append(baseline(image, access, work, s3))
            settle()
            _status, seconds = stack.convert(image, timeout_s=1800, poll_s=POLL_S)
            ours.append(seconds)
            print(f"    {label:14s} baseline {base[-1]:6.2f} s   plexzoom {seconds:6.2f} s",
                  flush=True)  # fmt: skip
        rows[label] = {
            "baseline_s": base,
            "plexzoom_s": ours,
            "ratio": statistics.median(ours) / statistics.median(base),
        }
    return rows


def run(
    images: dict[str, Path],
    large: dict[str, Path],
    access: str,
    runs: int,
    work: Path,
    backends: tuple[str, ...] = BACKENDS,
) -> dict[str, Any]:
    """Every image on the local backend, moto's S3 server and SeaweedFS; ``large`` images on
    the local backend only (to keep `make bench` short)."""
    print(f"\n== RGB conversion: baseline (dzsave Q=85, access={access}) vs plexzoom, {runs} runs "
          "each, alternating ==", flush=True)  # fmt: skip
    result: dict[str, Any] = {"runs": runs, "access": access, "goal_ratio": GOAL, "backends": {}}
    servers = {"local": None, "moto": MotoServer, "seaweedfs": SeaweedS3}
    for backend in backends:
        server_type = servers[backend]
        print(f"  {backend}", flush=True)
        server = server_type(work / f"{backend}-convert.log") if server_type else None
        try:
            s3 = server.env(BUCKET) if server else {}
            data = work / f"convert-{backend}"
            stack = Stack(data, s3, work / f"stack-convert-{backend}.log")
            try:
                todo = images | (large if backend == "local" else {})
                result["backends"][backend] = measure(stack, todo, access, runs, work, s3)
            finally:
                stack.stop()
                shutil.rmtree(data, ignore_errors=True)
        finally:
            if server:
                server.stop()
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    lines = [
        f"RGB conversion, median of {result['runs']}: baseline = dzsave Q=85 "
        f"(access={result['access']}) [+ boto3 upload_file on S3]; plexzoom = upload answered "
        f"-> ready; goal <= {result['goal_ratio']}x"
    ]
    for backend, rows in result["backends"].items():
        for label, row in rows.items():
            ok = "OK" if row["ratio"] <= result["goal_ratio"] else "MISSED"
            base, ours = (statistics.median(row[k]) for k in ("baseline_s", "plexzoom_s"))
            lines.append(
                f"  {backend:10s} {label:14s} baseline {base:6.2f} s   plexzoom {ours:6.2f} s   "
                f"{row['ratio']:.2f}x {ok}"
            )
    small = result.get("small")
    if small:
        ok = "OK" if small["median_s"] <= small["goal_s"] else "MISSED"
        lines.append(f"  small JPEG {small['photo']}: upload answered -> ready median "
                     f"{small['median_s']:.2f} s (goal <= {small['goal_s']} s: {ok})")  # fmt: skip
    return lines


def small(photo: Path, work: Path, runs: int = 7) -> dict[str, Any]:
    """Upload answered -> ready for a small JPEG on an idle `make run` stack (local folder)."""
    print(f"  small image {photo.name}, {runs} uploads one at a time on an idle stack", flush=True)
    data = work / "convert-small"
    stack = Stack(data, {}, work / "stack-convert-small.log")
    times = []
    try:
        time.sleep(2.0)  # the stack has started and is idle, as when a person opens the page
        for _ in range(runs):
            _status, seconds = stack.convert(photo, timeout_s=60, poll_s=0.2)
            times.append(seconds)
            time.sleep(1.0)  # idle between uploads, as one person uploading photos
    finally:
        stack.stop()
        shutil.rmtree(data, ignore_errors=True)
    print("    " + "  ".join(f"{t:.2f}" for t in times) + " s", flush=True)
    return {"photo": photo.name, "runs_s": times, "median_s": statistics.median(times),
            "goal_s": SMALL_GOAL_S}  # fmt: skip
