"""Exact values under the cursor in a real browser: the file's numbers at fit and at 100 %,
an approximation marked as one until they arrive, RGB images too."""

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import pyvips
import tifffile
from playwright.sync_api import BrowserContext, Page

from tests.servers import Stack
from tests.viewer.conftest import local_stack
from tests.viewer.test_browser import screen_pixel, wait_drawn
from tests.viewer.test_channels_browser import convert
from tests.viewer.test_views_browser import open_view, wait_settled

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 7  # Redis database of this module's stack (no other module uses it)
WIDTH, HEIGHT = 1200, 800
RNG = np.random.default_rng(5)
# Noise over the whole 16-bit range: 8-bit display codes cannot hold these values exactly.
PLANES = RNG.integers(0, 60000, (3, HEIGHT, WIDTH), dtype=np.uint16)
PHOTO = RNG.integers(0, 255, (300, 400, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with local_stack(tmp_path_factory, "values", _DB) as running:
        yield running


@pytest.fixture(scope="module")
def images(stack: Stack) -> dict[str, dict[str, Any]]:
    buffer = io.BytesIO()
    meta = {"axes": "CYX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25}
    tifffile.imwrite(buffer, PLANES, ome=True, metadata=meta, tile=(256, 256))
    photo = pyvips.Image.new_from_array(PHOTO, interpretation="srgb").pngsave_buffer()
    return {
        "channels": convert(stack, buffer.getvalue(), "noise.ome.tif"),
        "rgb": convert(stack, photo, "photo.png"),
    }


def hover(page: Page, x: float, y: float) -> dict[str, Any]:
    """Put the mouse over image pixel centre (x, y); the pixel the page says it is under."""
    point = page.evaluate(
        """([x, y]) => {
            const v = window.plexzoom.viewer;
            const p = v.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
            const box = v.element.getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [x + 0.5, y + 0.5],
    )
    page.mouse.move(point[0] - 3, point[1] - 3)  # arrive from elsewhere: a move event
    page.mouse.move(*point)
    page.wait_for_function(
        "([x, y]) => { const r = document.querySelector('[data-testid=pixel-readout]');"
        " return !r.hidden && r.dataset.x == x && r.dataset.y == y; }",
        arg=[x, y],
    )
    return readout(page)


def readout(page: Page) -> dict[str, Any]:
    reading: dict[str, Any] = page.evaluate("""() => {
        const r = document.querySelector('[data-testid=pixel-readout]');
        const rows = [...document.querySelectorAll('[data-testid^=channel-value-]')];
        return {x: Number(r.dataset.x), y: Number(r.dataset.y), exact: r.dataset.exact,
                text: r.textContent.replace(/\\s+/g, ' ').trim(),
                values: rows.map((o) => o.textContent),
                approx: document.querySelector('[data-testid=channel-panel]')
                    ?.dataset.valuesExact === '0'};
    }""")
    return reading


def exact(page: Page) -> dict[str, Any]:
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pixel-readout]').dataset.exact === '1'"
    )
    return readout(page)


def test_exact_values_at_fit_and_at_full_resolution(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """At fit zoom the tiles on screen are a reduced level; at 100 % the full one. Either way,
    once the cursor rests, each channel shows the file's value at that very pixel."""
    ctx, _ = context
    page = open_view(ctx, images["channels"]["links"]["viewer"])
    approximate_seen = False
    for zoom in ("fit", "full"):
        if zoom == "full":
            page.evaluate("""() => { const vp = window.plexzoom.viewer.viewport;
                vp.zoomTo(vp.imageToViewportZoom(1), null, true); }""")
            wait_settled(page)
        for x, y in [(601, 399), (17, 9), (1150, 780)]:
            if zoom == "full":  # bring the pixel on screen at 1 screen px per image px
                page.evaluate(
                    """([x, y]) => { const vp = window.plexzoom.viewer.viewport;
                    vp.panTo(vp.imageToViewportCoordinates(x, y), true); }""",
                    [x, y],
                )
                wait_settled(page)
            first = hover(page, x, y)
            place = f"x {x} · y {y} ({x * 0.25:g}, {y * 0.25:g} µm)"
            assert place in first["text"], first
            if first["exact"] == "0":  # not yet exact: marked as approximate
                approximate_seen = True
                assert first["approx"] and "approximate" in first["text"], first
            got = exact(page)
            assert (got["x"], got["y"]) == (x, y)
            assert got["values"] == [str(int(v)) for v in PLANES[:, y, x]], (zoom, x, y, got)
            assert not got["approx"] and "exact" in got["text"]
    assert approximate_seen, "no approximation was ever shown before the exact values"
    # Hidden channels are not asked for, and their rows stay empty.
    page.click("[data-testid=channel-visible-1]")
    page.evaluate("() => window.plexzoom.viewer.viewport.goHome(true)")
    wait_settled(page)
    hover(page, 300, 200)
    got = exact(page)
    assert got["values"][1] == "" and got["values"][0] == str(int(PLANES[0, 200, 300]))


def test_rgb_images_show_their_three_values(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    ctx, _ = context
    page = open_view(ctx, images["rgb"]["links"]["viewer"])
    hover(page, 123, 45)
    got = exact(page)
    r, g, b = (int(v) for v in PHOTO[45, 123])
    assert f"R {r} G {g} B {b}" in got["text"], got
    assert "µm" not in got["text"]  # a PNG has no pixel size
    page.mouse.move(1, 1)  # off the viewer: the readout goes away
    page.wait_for_function("() => document.querySelector('[data-testid=pixel-readout]').hidden")


def test_first_open_shows_a_black_background_and_bright_signal(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """Eight channels over a camera background of N(300, 40): on first open the field between
    the cells is black (each window starts above its channel's background), the cells bright.
    With every window at the channel's full range, as a check that this can fail, it is not."""
    planes = np.clip(RNG.normal(300, 40, (8, 400, 800)), 0, None).astype(np.uint16)
    for c in range(8):  # one bright square per channel, in a row
        planes[c, 150:250, c * 100 + 20 : c * 100 + 80] += 6000
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, planes, ome=True, metadata={"axes": "CYX"})
    image = convert(stack, buffer.getvalue(), "eight.ome.tif")
    ctx, _ = context
    page = open_view(ctx, image["links"]["viewer"])
    background = [(x, y) for x in (50, 350, 650) for y in (50, 330)]
    cells = [(c * 100 + 50, 200) for c in range(8)]

    def brightness(points: list[tuple[int, int]]) -> list[float]:
        shot = page.screenshot()
        return [max(screen_pixel(page, x, y, shot)) for x, y in points]

    assert max(brightness(background)) <= 12, "a veil over the background on first open"
    assert min(brightness(cells)) >= 100, "a channel's signal is too dim on first open"
    full = ",".join(f"{c}:ffffff:0:{int(planes[c].max())}:1" for c in range(8))
    page.goto(image["links"]["viewer"] + f"#c={full}")
    page.reload()
    wait_drawn(page)
    assert max(brightness(background)) > 12, "the check cannot tell a veil from black"
