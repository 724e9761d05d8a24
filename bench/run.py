"""`make bench`: conversion, memory, tile serving, live mixing, whole slides; writes
bench/out/results.json."""

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import convert
import dzsave_options
import events
import memory
import mixing
import multichannel
import psutil
import pyvips
import scale
import slides
import tiles
import uploads
import values
from images import CONTENTS, ensure_image, ensure_photo

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
SECTIONS = (
    "options", "convert", "memory", "tiles", "multichannel", "mixing", "values", "events", "slides",
    "scale", "uploads",
)  # fmt: skip


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small images, one run: a smoke run")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only this section")
    parser.add_argument("--runs", type=int, help="runs per variant (default 3, quick 1)")
    parser.add_argument("--backend", choices=convert.BACKENDS, action="append",
                        help="conversion and values sections: only this backend")  # fmt: skip
    return parser.parse_args()


def environment() -> dict[str, Any]:
    """What the numbers were measured on."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit,
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "load_at_start": os.getloadavg(),
    }


def main() -> int:
    """Run the chosen sections, print a summary table, write results.json."""
    args = parse_args()
    sections = args.only or list(SECTIONS)
    if {"tiles", "scale"} & set(sections) and shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed; the tile benchmark needs it "
            "(Debian: apt-get install -y wrk). Or run with --only convert / --only memory.",
            file=sys.stderr,
        )
        return 2
    if "slides" in sections and shutil.which("vips") is None:
        print(
            "bench: the vips command is not installed; the whole-slide benchmark's baseline needs "
            "it (make bench-tools, or Debian: apt-get install -y libvips-tools).",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up children on SIGTERM too
    quick = args.quick
    big = 8192 if quick else 16384
    memory_sizes = [4096, 8192] if quick else [8192, 16384, 32768]
    runs = args.runs or (1 if quick else 3)
    duration_s = 3.0  # per warm tile run: wrk's rate settles within a second

    OUT.mkdir(exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {"environment": environment(), "quick": quick}
    print(f"bench: {results['environment']}", flush=True)
    print("== images (cached in bench/out/images) ==", flush=True)
    needed = {big} if {"tiles", "scale"} & set(sections) else set()
    needed |= set(memory_sizes) if "memory" in sections else set()
    images = {size: ensure_image(OUT / "images", size) for size in sorted(needed)}
    access = "sequential"  # unless the options section measures another to be faster

    work = Path(tempfile.mkdtemp(dir=OUT, prefix="work-"))
    summary: list[str] = []
    timing: dict[str, float] = results.setdefault("section_seconds", {})
    timing["images"] = round(time.monotonic() - started, 1)
    try:
        if "options" in sections:
            mark = time.monotonic()
            options_image = ensure_image(OUT / "images", 4096 if quick else 8192)
            results["options"] = dzsave_options.run(options_image, runs)
            access = results["options"]["fastest_access"]
            summary += dzsave_options.table(results["options"])
            timing["options"] = round(time.monotonic() - mark, 1)
        if "convert" in sections:
            mark = time.monotonic()
            contents = ("he",) if quick else CONTENTS
            rgb = {f"{c} {big}²": ensure_image(OUT / "images", big, c) for c in contents}
            large = {} if quick else {"he 32768²": ensure_image(OUT / "images", 32768, "he")}
            backends = tuple(args.backend or convert.BACKENDS)
            results["convert"] = convert.run(rgb, large, access, runs, work, backends)
            results["convert"]["small"] = convert.small(ensure_photo(OUT / "images"), work)
            summary += convert.table(results["convert"])
            timing["convert"] = round(time.monotonic() - mark, 1)
        if "memory" in sections:
            mark = time.monotonic()
            results["memory"] = memory.run({s: images[s] for s in memory_sizes}, work)
            summary += memory.table(results["memory"])
            timing["memory"] = round(time.monotonic() - mark, 1)
        if "tiles" in sections:
            mark = time.monotonic()
            results["tiles"] = tiles.run(images[big], big, duration_s, runs, work)
            summary += tiles.table(results["tiles"])
            timing["tiles"] = round(time.monotonic() - mark, 1)
        if "multichannel" in sections:
            mark = time.monotonic()
            size = 4096 if quick else 8192
            sizes = [2048, 4096] if quick else [4096, 8192]
            results["multichannel"] = multichannel.run(OUT / "images", size, runs, work, sizes)
            summary += multichannel.table(results["multichannel"])
            timing["multichannel"] = round(time.monotonic() - mark, 1)
        if "mixing" in sections:
            mark = time.monotonic()
            size = 2048 if quick else 4096
            results["mixing"] = mixing.run(OUT / "images", size, 20, work)
            summary += mixing.table(results["mixing"])
            timing["mixing"] = round(time.monotonic() - mark, 1)
        if "events" in sections:
            mark = time.monotonic()
            results["events"] = events.run(OUT / "images", work)
            summary += events.table(results["events"])
            timing["events"] = round(time.monotonic() - mark, 1)
        if "values" in sections:
            mark = time.monotonic()
            size = 4096 if quick else 8192
            backends = tuple(args.backend or convert.BACKENDS)
            results["values"] = values.run(OUT / "images", size, work, backends)
            summary += values.table(results["values"])
            timing["values"] = round(time.monotonic() - mark, 1)
        if "slides" in sections:
            mark = time.monotonic()
            results["slides"] = slides.run(OUT / "slides", work, runs, quick)
            summary += slides.table(results["slides"])
            timing["slides"] = round(time.monotonic() - mark, 1)
        if "scale" in sections:
            mark = time.monotonic()
            results["scale"] = scale.run(images[big], work, duration_s, runs)
            summary += scale.table(results["scale"])
            timing["scale"] = round(time.monotonic() - mark, 1)
        if "uploads" in sections:
            mark = time.monotonic()
            results["uploads"] = uploads.run(work, runs)
            summary += uploads.table(results["uploads"])
            timing["uploads"] = round(time.monotonic() - mark, 1)
    finally:
        logs = OUT / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir()
        for log in work.glob("*.log"):
            shutil.copy(log, logs / log.name)
        shutil.rmtree(work, ignore_errors=True)
        results["seconds"] = round(time.monotonic() - started, 1)
        (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print("\n" + "=" * 100)
    print("\n".join(summary))
    print("=" * 100)
    parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timing.items())
    print(f"bench: {results['seconds']:.0f} s ({parts})")
    print(f"bench: results in {OUT / 'results.json'}, logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
