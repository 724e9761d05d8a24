"""Which libvips settings make dzsave fast or slow: each variant in a fresh process, same image.

The fastest JPEG variant is the baseline of the conversion benchmark (bench/convert.py), so the
baseline is found by measuring, never taken from plexzoom's own settings. Run alone:
``python bench/dzsave_options.py IMAGE.tif [RUNS]``.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# One dzsave into an uncompressed zip (what plexzoom stores), 254 px tiles, overlap 1, Q 85.
# argv: image, out, variant as JSON {"kwargs": {...}, "open": {...}, "progress": bool,
# "target": bool, "index": bool}. Prints the seconds from open to the end of the variant's work.
_RUN = r"""
import json, sys, time, zipfile, pyvips
src, out, variant = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
start = time.monotonic()
image = pyvips.Image.new_from_file(src, **variant.get("open", {}))
if variant.get("grey"):  # one band, as a channel pyramid is
    image = image[0]
if variant.get("progress"):
    image.set_progress(True)
    image.signal_connect("eval", lambda _i, p: None)
kwargs = dict(tile_size=254, overlap=1, depth="onepixel", container="zip", compression=0)
kwargs |= variant["kwargs"]
if variant.get("target"):
    file = open(out, "wb")
    target = pyvips.TargetCustom()
    target.on_write(lambda chunk: file.write(chunk))
    kwargs.pop("container")
    image.dzsave_target(target, basename="image", **kwargs)
    file.close()
else:
    image.dzsave(out, **kwargs)
if variant.get("index"):
    with zipfile.ZipFile(out) as zf:
        sum(info.header_offset for info in zf.infolist())
print(time.monotonic() - start)
"""

SEQ = {"access": "sequential"}
JPEG_VARIANTS: dict[str, dict[str, Any]] = {
    "Q=85, sequential": {"kwargs": {"Q": 85}, "open": SEQ},
    "Q=85, random access": {"kwargs": {"Q": 85}},
    "libvips defaults (Q 75), sequential": {"kwargs": {}, "open": SEQ},
    "Q=85, keep=none, sequential": {"kwargs": {"Q": 85, "keep": "none"}, "open": SEQ},
    'suffix=".jpeg", sequential': {"kwargs": {"suffix": ".jpeg"}, "open": SEQ},
    'suffix=".jpeg[Q=85,keep=none]", sequential': {
        "kwargs": {"suffix": ".jpeg[Q=85,keep=none]"},
        "open": SEQ,
    },
    "Q=85, sequential, progress signal": {"kwargs": {"Q": 85}, "open": SEQ, "progress": True},
    "Q=85, sequential, Python write callback": {
        "kwargs": {"Q": 85},
        "open": SEQ,
        "target": True,
    },
    "Q=85, sequential, + index pass": {"kwargs": {"Q": 85}, "open": SEQ, "index": True},
    "Q=85, sequential, 1 thread": {"kwargs": {"Q": 85}, "open": SEQ, "threads": 1},
    "Q=85, sequential, 8 threads": {"kwargs": {"Q": 85}, "open": SEQ, "threads": 8},
}
# PNG options exist only in a suffix; measured on one band, as channel pyramids are.
PNG_VARIANTS: dict[str, dict[str, Any]] = {
    f'suffix="{suffix}"': {"kwargs": {"suffix": suffix}, "open": SEQ, "grey": True}
    for suffix in (".png", ".png[compression=1]", ".png[compression=0]",
                   ".png[compression=1,filter=none]")
}  # fmt: skip
ACCESS = {"sequential": "Q=85, sequential", "random": "Q=85, random access"}


def time_variant(image: Path, variant: dict[str, Any], work: Path) -> tuple[float, int]:
    """(seconds, archive bytes) of one variant in a fresh process."""
    out = work / "image.zip"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    if "threads" in variant:
        env["VIPS_CONCURRENCY"] = str(variant["threads"])
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(image), str(out), json.dumps(variant)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
        env=env,
    )
    size = out.stat().st_size
    out.unlink()
    return float(done.stdout.strip().splitlines()[-1]), size


def measure(image: Path, variants: dict[str, dict[str, Any]], runs: int) -> dict[str, Any]:
    """Median seconds and archive size per variant; runs interleaved so load drifts hit all."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="dzsave-options-") as tmp:
        for _ in range(runs):
            for name, variant in variants.items():
                seconds, sizes[name] = time_variant(image, variant, Path(tmp))
                times[name].append(seconds)
    return {
        name: {"median_s": statistics.median(t), "runs_s": t, "bytes": sizes[name]}
        for name, t in times.items()
    }


def run(image: Path, runs: int) -> dict[str, Any]:
    """Measure the JPEG variants on ``image`` and the PNG ones on its first band."""
    print(f"\n== dzsave options: {image.name}, {runs} runs each, fresh process each ==", flush=True)
    jpeg = measure(image, JPEG_VARIANTS, runs)
    png = measure(image, PNG_VARIANTS, runs)
    fastest = min(jpeg, key=lambda name: jpeg[name]["median_s"])
    access = min(("sequential", "random"), key=lambda a: jpeg[ACCESS[a]]["median_s"])
    return {"image": image.name, "runs": runs, "jpeg": jpeg, "png": png,
            "fastest_jpeg": fastest, "fastest_access": access}  # fmt: skip


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines: each variant's median and its ratio to the measured baseline."""
    lines = [f"dzsave options on {result['image']}, median of {result['runs']} (ratio to first)"]
    for kind in ("jpeg", "png"):
        rows = result[kind]
        first = next(iter(rows.values()))["median_s"]
        for name, row in rows.items():
            lines.append(
                f"  {kind:4s} {name:46s} {row['median_s']:7.2f} s  {row['median_s'] / first:5.2f}x"
                f"  {row['bytes'] / 2**20:7.1f} MiB"
            )
    lines.append(f"  fastest JPEG variant: {result['fastest_jpeg']}; the RGB baseline opens with "
                 f"access={result['fastest_access']}")  # fmt: skip
    return lines


if __name__ == "__main__":
    result = run(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    print("\n".join(table(result)))
