"""Live channel mixing in chromium: time from a slider change to the redrawn viewport."""

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from multichannel import channel_plane
from playwright.sync_api import Page, sync_playwright
from stack import Stack

VERSION = 1
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1920, "height": 1080}
GOAL_MS = 100
# (channels in the image, channels visible, drawer, mix mode): the goal is for 4 visible; 8 is the
# most the browser mixes, 16 are drawn by the server (BROWSER_MAX_VISIBLE in
# viewer/js/lib/compositor.js).
# The viewer draws mixed tiles with OpenSeadragon's canvas drawer. For comparison: the WebGL
# drawer, and 16 channels forced to browser mixing (?mix=browser).
CASES = [
    (4, 4, "canvas", "auto"),
    (4, 4, "webgl", "auto"),
    (16, 8, "canvas", "auto"),
    (16, 16, "canvas", "auto"),
    (16, 16, "canvas", "browser"),
]

# One slider change, timed in the page: from the input event to the animation frame after the
# viewer has re-drawn every loaded tile (plexzoom.mixer.idle() resolves after OpenSeadragon's
# requestInvalidate() has finished and drawn the world).
_CHANGE_JS = """async ([index, value]) => {
    const input = document.querySelector(`[data-testid=channel-max-range-${index}]`);
    const mixer = window.plexzoom.mixer;
    const before = mixer.stats.draws;
    const start = performance.now();
    input.value = String(value);
    input.dispatchEvent(new Event("input", { bubbles: true }));
    await mixer.idle();
    await new Promise((resolve) => requestAnimationFrame(resolve));
    return { ms: performance.now() - start, tiles: mixer.stats.draws - before, mode: mixer.mode };
}"""


def ensure_image(folder: Path, size: int, channels: int) -> Path:
    """Generate (once) a `channels` x uint16 size² OME-TIFF, channels as tiled pages."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mixing-v{VERSION}-{size}-{channels}ch.ome.tif"
    if not path.exists():
        planes = np.stack([channel_plane(size, i) for i in range(channels)])
        tmp = path.with_suffix(".part.tif")
        tifffile.imwrite(tmp, planes, metadata={"axes": "CYX"}, ome=True, tile=(256, 256),
                         compression="zlib")  # fmt: skip
        tmp.rename(path)
    return path


def visible_query(image: dict[str, Any], visible: int) -> str:
    """c= of the first `visible` channels at their default windows (render.js's encoding)."""
    items = [
        f"{c['index']}:{c['color'][1:]}:{c['window']['min']}:{c['window']['max']}:1"
        for c in image["channels"][:visible]
    ]
    return "c=" + ",".join(items)


def open_full_view(page: Page, image: dict[str, Any], visible: int, drawer: str, mix: str) -> None:
    """The image at 1 screen px per image px, panel collapsed: the viewer fills the window."""
    centre = f"x={image['width'] // 2}&y={image['height'] // 2}&z=1"
    url = f"{image['links']['viewer']}&drawer={drawer}&mix={mix}"
    page.goto(f"{url}#{centre}&{visible_query(image, visible)}")
    page.evaluate("() => window.plexzoom.ready")
    page.click("[data-testid=panel-toggle]")
    page.wait_for_function("() => document.body.dataset.viewerReady === '1'", timeout=300_000)
    page.wait_for_timeout(500)


def measure(
    page: Page, image: dict[str, Any], visible: int, drawer: str, mix: str, changes: int
) -> dict[str, Any]:
    """Median and spread of `changes` slider changes with `visible` channels shown."""
    start = time.monotonic()
    open_full_view(page, image, visible, drawer, mix)
    first_view_s = time.monotonic() - start
    page.evaluate(_CHANGE_JS, [0, image["channels"][0]["window"]["max"]])  # warm-up
    times, tiles, modes = [], [], set()
    for k in range(changes):
        index = k % visible
        window = image["channels"][index]["window"]
        value = window["max"] * (0.6 + 0.4 * ((k // visible) % 2))
        result = page.evaluate(_CHANGE_JS, [index, value])
        times.append(result["ms"])
        tiles.append(result["tiles"])
        modes.add(result["mode"])
    viewer = page.evaluate(
        "() => { const v = window.plexzoom.viewer;"
        " return [v.drawer.getType(), v.element.clientWidth, v.element.clientHeight]; }"
    )
    return {
        "visible": visible,
        "channels": len(image["channels"]),
        "mode": "/".join(sorted(modes)) + (" (forced)" if mix != "auto" else ""),
        "first_view_s": round(first_view_s, 2),
        "drawer": viewer[0],
        "viewer_px": viewer[1:],
        "changes": changes,
        "median_ms": statistics.median(times),
        "p90_ms": sorted(times)[int(0.9 * (len(times) - 1))],
        "times_ms": [round(t, 1) for t in times],
        "tiles_per_change": statistics.median(tiles),
    }


def run(images: Path, size: int, changes: int, work: Path) -> dict[str, Any]:
    """Convert the images in a fresh stack, then time slider changes in chromium."""
    print(f"\n== live mixing: chromium {VIEWPORT['width']}x{VIEWPORT['height']}, {size}² uint16 ==")
    stack = Stack(work / "mixing", {}, work / "stack-mixing.log")
    result: dict[str, Any] = {"size": size, "goal_ms": GOAL_MS, "cases": []}
    try:
        converted = {}
        for channels in sorted({case[0] for case in CASES}):
            start = time.monotonic()
            status, _seconds = stack.convert(ensure_image(images, size, channels), timeout_s=1800)
            converted[channels] = status
            took = time.monotonic() - start
            print(f"  {channels}-channel image ready in {took:.0f} s", flush=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                for channels, visible, drawer, mix in CASES:
                    page = browser.new_page(viewport=VIEWPORT)
                    case = measure(page, converted[channels], visible, drawer, mix, changes)
                    page.close()
                    result["cases"].append(case)
                    print(table({**result, "cases": [case]})[1], flush=True)
            finally:
                browser.close()
    finally:
        stack.stop()
    return result


def table(result: dict[str, Any]) -> list[str]:
    """Printable lines for the summary."""
    width, height = result["cases"][0]["viewer_px"] if result["cases"] else ["?", "?"]
    lines = [
        f"live mixing, slider change -> redrawn viewport ({result['size']}² uint16, chromium "
        f"{VIEWPORT['width']}x{VIEWPORT['height']}, viewer {width}x{height} px, medians):"
    ]
    for case in result["cases"]:
        goal = ""
        if case["visible"] == 4 and case["drawer"] == "canvas" and "forced" not in case["mode"]:
            ok = "OK" if case["median_ms"] < result["goal_ms"] else "MISSED"
            goal = f"  (goal < {result['goal_ms']} ms: {ok})"
        lines.append(
            f"  {case['visible']:2d} visible channels  {case['median_ms']:6.0f} ms  "
            f"p90 {case['p90_ms']:5.0f} ms  {case['mode']} mix, {case['drawer']} drawer, "
            f"{case['tiles_per_change']:.0f} tiles; first view {case['first_view_s']:.1f} s{goal}"
        )
    return lines
