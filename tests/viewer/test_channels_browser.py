"""Live channel mixing in a real browser: the pixels follow the render model, without downloads."""

import io
import math
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips
import scipy.io
import tifffile
from playwright.sync_api import BrowserContext, Page, Request

from plexzoom.core.render import RenderSettings, render, settings_to_query, visible_tables
from tests.servers import Stack
from tests.viewer.conftest import artifact, local_stack
from tests.viewer.test_browser import screen_pixel, wait_drawn

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 12  # Redis database of this module's stack (test_browser.py uses 10 and 11)
WIDTH, HEIGHT = 900, 600
# Each channel is bright in one third of the image (top half), half as bright below, dim elsewhere.
LEVELS = [(4000, 2000), (20000, 8000), (60000, 30000)]
BACKGROUND = 100
PROBES = [(x, y) for x in (150, 450, 750) for y in (150, 450)]  # the centre of each region
TOLERANCE = 6  # screenshot of a scaled, filtered drawing


def three_channel_tiff() -> bytes:
    """A uint16 OME-TIFF, channels as pages, with a known flat pattern per channel."""
    planes = np.full((3, HEIGHT, WIDTH), BACKGROUND, np.uint16)
    for c, (bright, mid) in enumerate(LEVELS):
        planes[c, : HEIGHT // 2, c * 300 : (c + 1) * 300] = bright
        planes[c, HEIGHT // 2 :, c * 300 : (c + 1) * 300] = mid
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "FITC", "Cy5"]}}
    meta |= {"PhysicalSizeX": 0.5, "PhysicalSizeXUnit": "µm", "PhysicalSizeY": 0.5}
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, planes, metadata=meta, ome=True)
    return buffer.getvalue()


def hyperspectral_mat() -> bytes:
    """A 31-band 400-700 nm cube (.mat v5 with wavelengths), thirds lit near 450, 550, 650 nm."""
    waves = np.linspace(400, 700, 31)
    cube = np.zeros((300, 450, 31), np.float32)
    for third, centre in enumerate((450, 550, 650)):
        cube[:, third * 150 : (third + 1) * 150, :] = np.abs(waves - centre) <= 40
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"cube": cube, "wavelength": waves})
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with local-folder storage."""
    with local_stack(tmp_path_factory, "channels", _DB) as running:
        yield running


def convert(stack: Stack, data: bytes, name: str) -> dict[str, Any]:
    """Upload a file over HTTP and wait until it is ready."""
    created = httpx.post(f"{stack.url}/v1/images", files={"file": (name, data)}, timeout=60).json()
    image = stack.wait_status(created["id"])
    assert image["status"] == "ready", image
    return image


@cache
def _tile(url: str) -> np.ndarray:
    return np.asarray(pyvips.Image.new_from_buffer(httpx.get(url).content, "").numpy())


def code_at(channel: dict[str, Any], image: dict[str, Any], x: int, y: int) -> int:
    """The code of a full-resolution pixel, read from the channel's own DZI tile."""
    level = math.ceil(math.log2(max(image["width"], image["height"])))
    col, row = x // 254, y // 254
    tile = _tile(f"{channel['dzi'][:-4]}_files/{level}/{col}_{row}.png")
    pixel = tile[y - row * 254 + (row > 0), x - col * 254 + (col > 0)]
    return int(np.atleast_1d(pixel)[0])


def expected_rgb(image: dict[str, Any], settings: dict[str, Any], x: int, y: int) -> list[int]:
    """The render model in Python (plexzoom.core.render) at one pixel."""
    luts = {c["index"]: c["lut"] for c in image["channels"]}
    tables = visible_tables(RenderSettings.model_validate(settings), luts)
    codes = [np.array([[code_at(image["channels"][i], image, x, y)]], np.uint8) for i, _ in tables]
    return render(codes, [t for _, t in tables], (1, 1))[0, 0].tolist()


def page_settings(page: Page) -> dict[str, Any]:
    """The settings the viewer mixes with right now."""
    settings: dict[str, Any] = page.evaluate("() => window.plexzoom.panel.settings")
    return settings


def settle(page: Page) -> None:
    """Wait until the last change is mixed and on screen."""
    page.evaluate("() => window.plexzoom.mixer.idle()")
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def check_pixels(page: Page, image: dict[str, Any], name: str) -> bytes:
    """Every probe shows what the render model gives for the page's current settings."""
    settle(page)
    shot = page.screenshot(path=artifact(f"channels-{name}.png"))
    settings = page_settings(page)
    for x, y in PROBES:
        want = expected_rgb(image, settings, x, y)
        got = screen_pixel(page, x, y, shot)
        assert np.allclose(got, want, atol=TOLERANCE), (name, x, y, got, want)
    return shot


def tile_requests(requests: list[Request]) -> list[str]:
    return [r.url for r in requests if "/tiles/" in r.url]


@pytest.fixture(scope="module")
def three(stack: Stack) -> dict[str, Any]:
    return convert(stack, three_channel_tiff(), "three.ome.tif")


def open_viewer(ctx: BrowserContext, url: str) -> Page:
    page = ctx.new_page()
    page.goto(url)
    wait_drawn(page)
    return page


def test_toggle_recolour_rewindow_without_downloads(
    three: dict[str, Any], context: tuple[BrowserContext, list[str]]
) -> None:
    ctx, blocked = context
    page = open_viewer(ctx, three["links"]["viewer"])
    assert page.evaluate("() => window.plexzoom.mode") == "mix"
    assert page.evaluate("() => document.body.dataset.mixMode") == "browser"
    assert "browser mix" in page.text_content("[data-testid=mix-mode]")
    check_pixels(page, three, "start")
    requests: list[Request] = []
    page.on("request", lambda request: requests.append(request))

    page.uncheck("[data-testid=channel-visible-1]")
    shot = check_pixels(page, three, "toggled-off")
    assert screen_pixel(page, 450, 150, shot) == [0, 0, 0]
    page.check("[data-testid=channel-visible-1]")
    check_pixels(page, three, "toggled-on")

    page.fill("[data-testid=channel-color-0]", "#ff8000")
    shot = check_pixels(page, three, "recoloured")
    assert np.allclose(screen_pixel(page, 150, 150, shot), [255, 128, 0], atol=TOLERANCE)

    page.fill("[data-testid=channel-max-2]", "120000")
    page.dispatch_event("[data-testid=channel-max-2]", "change")
    page.fill("[data-testid=channel-min-range-0]", "1000")
    page.fill("[data-testid=channel-gamma-1]", str(math.log10(2)))
    shot = check_pixels(page, three, "rewindowed")
    assert 110 < screen_pixel(page, 750, 150, shot)[0] < 140, "half the window: half the red"

    page.click("[data-testid=channel-solo-2]")
    check_pixels(page, three, "solo")
    assert [c["visible"] for c in page_settings(page)["channels"]] == [False, False, True]
    page.click("[data-testid=channel-solo-2]")
    check_pixels(page, three, "solo-undone")
    assert tile_requests(requests) == [], "a settings change downloaded tiles"

    # The native value under the cursor, per visible channel.
    point = page.evaluate(
        """() => {
            const v = window.plexzoom.viewer;
            const p = v.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(150, 450));
            const box = v.element.getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }"""
    )
    page.mouse.move(*point)
    # Once the cursor rests: the file's own value (test_values_browser.py checks many pixels).
    page.wait_for_function(
        "() => document.querySelector('[data-testid=pixel-readout]').dataset.exact === '1'"
    )
    value = page.text_content("[data-testid=channel-value-0]")
    assert value == str(LEVELS[0][1])

    # The scale bar shows a round length of the file's unit (0.5 µm pixels) and follows the zoom.
    bar = page.text_content("[data-testid=scalebar]").strip()
    assert bar.split()[0] in {"1", "2", "5", "10", "20", "50", "100"} and bar.endswith("µm"), bar
    page.evaluate("() => window.plexzoom.viewer.viewport.zoomBy(8, null, true)")
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=scalebar]').textContent.trim() !== {bar!r}"
    )
    assert blocked == []


def test_url_carries_channels_and_save_makes_default(
    three: dict[str, Any], stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    ctx, _ = context
    page = open_viewer(ctx, three["links"]["viewer"])
    page.uncheck("[data-testid=channel-visible-0]")
    page.fill("[data-testid=channel-color-2]", "#ff00ff")
    page.fill("[data-testid=channel-min-1]", "5000")
    page.dispatch_event("[data-testid=channel-min-1]", "change")
    settle(page)
    settings = page_settings(page)
    query = settings_to_query(RenderSettings.model_validate(settings))
    page.wait_for_function(f"() => location.hash.includes({query!r})")
    assert "&c=" in page.url and "z=" in page.url

    shared = open_viewer(ctx, page.url)
    assert page_settings(shared) == settings
    assert shared.is_checked("[data-testid=channel-visible-0]") is False
    check_pixels(shared, three, "shared-url")
    # Channel 0 was never shown on this page: showing it downloads its tiles, once.
    requests: list[Request] = []
    shared.on("request", lambda request: requests.append(request))
    shared.check("[data-testid=channel-visible-0]")
    check_pixels(shared, three, "shown-late")
    assert tile_requests(requests) and all("/c0_files/" in u for u in tile_requests(requests))

    page.click("[data-testid=channels-save]")
    page.wait_for_selector("[data-testid=panel-status][data-kind=ok]")
    saved = httpx.get(f"{stack.url}/v1/images/{three['id']}/render").json()
    assert saved == settings
    page.click("[data-testid=channels-all-on]")
    settle(page)
    assert all(c["visible"] for c in page_settings(page)["channels"])
    page.click("[data-testid=channels-reset]")
    settle(page)
    assert page_settings(page) == settings
    page.screenshot(path=artifact("channels-saved.png"))


def test_hyperspectral_true_colour(stack: Stack, context: tuple[BrowserContext, list[str]]) -> None:
    cube = convert(stack, hyperspectral_mat(), "cube.mat")
    assert cube["channels"][5]["wavelength_nm"] == pytest.approx(450)
    page = open_viewer(context[0], cube["links"]["viewer"])
    options = page.eval_on_selector_all(
        "[data-testid=preset-select] option", "(all) => all.map((o) => o.value)"
    )
    assert {"rgb", "groups", "truecolour"} <= set(options)
    before = page.screenshot(path=artifact("channels-cube-default.png"))

    page.select_option("[data-testid=preset-select]", "truecolour")
    settle(page)
    after = page.screenshot(path=artifact("channels-cube-truecolour.png"))
    assert page.evaluate("() => document.body.dataset.mixMode") == "server"
    assert "server mix" in page.text_content("[data-testid=mix-mode]")
    settings = page_settings(page)
    for third, primary in enumerate((2, 1, 0)):  # 450 nm bluish, 550 greenish, 650 reddish
        x, y = 75 + 150 * third, 150
        got = screen_pixel(page, x, y, after)
        assert int(np.argmax(got)) == primary, (x, got)
        assert np.allclose(got, expected_rgb(cube, settings, x, y), atol=TOLERANCE)
    assert screen_pixel(page, 75, 150, before) != screen_pixel(page, 75, 150, after)

    # PCA: the server's 'pca' pyramid is laid over the mix, and taken away again.
    assert "pca" in options and cube["links"]["pca"].endswith("/pca.dzi")
    page.select_option("[data-testid=preset-select]", "pca")
    page.wait_for_function(
        "() => { const w = window.plexzoom.viewer.world; "
        "return w.getItemCount() > 1 && w.getItemAt(1).getFullyLoaded(); }",
        timeout=20_000,
    )
    settle(page)
    pca = page.screenshot(path=artifact("channels-cube-pca.png"))
    thirds = [screen_pixel(page, 75 + 150 * third, 150, pca) for third in range(3)]
    assert len({tuple(t) for t in thirds}) == 3, thirds  # the three spectra look different

    page.select_option("[data-testid=preset-select]", "rgb")
    assert page.evaluate("() => document.body.dataset.pca") == "0"
    for slot, index in zip("rgb", (25, 15, 5), strict=True):
        page.select_option(f"[data-testid=preset-{slot}]", str(index))
    settle(page)
    assert page.evaluate("() => document.body.dataset.mixMode") == "browser"
    shot = page.screenshot(path=artifact("channels-cube-rgb.png"))
    for third in range(3):
        got = screen_pixel(page, 75 + 150 * third, 150, shot)
        assert int(np.argmax(got)) == 2 - third, got
