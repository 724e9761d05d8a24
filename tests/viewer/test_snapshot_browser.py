"""The Snapshot dialog and the Info panel in a real browser: the PNG saved is the server's
picture of exactly the region in view, with the shown channels in its legend."""

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import pyvips
from playwright.sync_api import BrowserContext, Page

from tests.servers import Stack
from tests.viewer.conftest import local_stack
from tests.viewer.test_browser import wait_drawn
from tests.viewer.test_channels_browser import convert, settle, three_channel_tiff

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 8  # Redis database of this module's stack
# Image px at the centre and screen px per image px: the top left of the view falls on the DAPI
# third, which is dark once DAPI is hidden, so the legend's swatches stand on a plain background.
VIEW = "x=450&y=330&z=1.5"
HIDDEN = 0  # DAPI
TIMES = "\N{MULTIPLICATION SIGN}"  # as the page writes sizes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with local-folder storage."""
    with local_stack(tmp_path_factory, "snapshot", _DB) as running:
        yield running


@pytest.fixture(scope="module")
def image(stack: Stack) -> dict[str, Any]:
    """A 900 x 600 uint16 OME-TIFF with three channels and a 0.5 µm pixel size."""
    return convert(stack, three_channel_tiff(), "three.ome.tif")


@pytest.fixture
def page(stack: Stack, context: tuple[BrowserContext, list[str]], image: dict[str, Any]) -> Page:
    """The image at VIEW with DAPI hidden, fully drawn."""
    ctx, _blocked = context
    opened = ctx.new_page()
    opened.goto(f"{stack.url}/view.html?id={image['id']}#{VIEW}")
    wait_drawn(opened)
    opened.get_by_test_id(f"channel-visible-{HIDDEN}").click()
    settle(opened)
    return opened


def png(data: bytes) -> np.ndarray:
    """A PNG's pixels, height x width x 3."""
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy())


def server_snapshot(stack: Stack, request: dict[str, Any], **changes: Any) -> np.ndarray:
    """The server's own PNG for `request` (as snapshotRequest() gives it), asked for directly."""
    params = {k: request[k] for k in ("x", "y", "w", "h", "width", "c")} | changes
    params |= {k: str(request[k]).lower() for k in ("scalebar", "legend") if k not in changes}
    answer = httpx.get(f"{stack.url}/v1/images/{request['id']}/snapshot", params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    return png(answer.content)


def open_dialog(page: Page) -> dict[str, Any]:
    """Open the dialog with the keyboard; the request it would send."""
    page.get_by_test_id("snapshot-open").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-testid=snapshot-dialog][open]")
    request: dict[str, Any] = page.evaluate("() => window.plexzoom.snapshotRequest()")
    return request


def download(page: Page) -> np.ndarray:
    """Press Download and decode the file the browser saves."""
    with page.expect_download() as info:
        page.get_by_test_id("snapshot-download").click()
    saved = info.value
    assert saved.suggested_filename == f"plexzoom-{page.evaluate('plexzoom.image.id')}.png"
    page.wait_for_selector("[data-testid=snapshot-dialog]:not([open])", state="attached")
    with open(saved.path(), "rb") as file:
        return png(file.read())


def visible_bounds(page: Page) -> dict[str, float]:
    """The image rectangle in view, from the centre and zoom (as the address keeps them)."""
    bounds: dict[str, float] = page.evaluate("""() => {
        const viewer = window.plexzoom.viewer, vp = viewer.viewport;
        const c = vp.viewportToImageCoordinates(vp.getCenter(true));
        const z = vp.viewportToImageZoom(vp.getZoom(true));
        const w = viewer.element.clientWidth / z, h = viewer.element.clientHeight / z;
        return {x: c.x - w / 2, y: c.y - h / 2, w, h, screen: viewer.element.clientWidth};
    }""")
    return bounds


def colour_pixels(picture: np.ndarray, colour: str) -> np.ndarray:
    """Where `picture` is exactly the colour "#rrggbb"."""
    rgb = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
    return np.all(picture == rgb, axis=2)


def test_the_snapshot_is_the_view_with_legend_and_scale_bar(
    stack: Stack, image: dict[str, Any], page: Page
) -> None:
    """Screen size: the region in view at the viewer's width, the server's own picture of it,
    the shown channels' swatches top left and none of the hidden one; without legend and scale
    bar the corners are plain image."""
    request = open_dialog(page)
    bounds = visible_bounds(page)
    for start, size in (("x", "w"), ("y", "h")):
        assert abs(request[start] - bounds[start]) <= 1, (request, bounds)
        assert abs(request[start] + request[size] - bounds[start] - bounds[size]) <= 1
    # Screen size: the region's width on screen (devicePixelRatio 1), here above full resolution.
    assert bounds["screen"] > request["w"] and request["width"] == request["w"]
    assert [item.split(":")[0] for item in request["c"].split(",")] == ["1", "2"]  # DAPI hidden
    size = page.get_by_test_id("snapshot-size")
    said = (int(size.get_attribute("data-width")), int(size.get_attribute("data-height")))
    assert size.inner_text() == f"Makes {said[0]} {TIMES} {said[1]} px"

    shot = download(page)
    assert (shot.shape[1], shot.shape[0]) == said
    assert np.array_equal(shot, server_snapshot(stack, request))

    plain = server_snapshot(stack, request, scalebar="false", legend="false")
    corner = (slice(0, shot.shape[0] // 4), slice(0, shot.shape[1] // 3))
    swatch = max(12, min(48, round(shot.shape[1] / 60))) ** 2  # the server's text height, squared
    for channel in image["channels"]:
        drawn = colour_pixels(shot[corner], channel["color"]) & ~colour_pixels(
            plain[corner], channel["color"]
        )
        wanted = 0 if channel["index"] == HIDDEN else swatch
        assert (drawn.sum() >= wanted) if wanted else drawn.sum() == 0, channel
    bottom_left = (slice(-shot.shape[0] // 4, None), slice(0, shot.shape[1] // 3))
    assert not np.array_equal(shot[bottom_left], plain[bottom_left])  # the scale bar is there
    middle = (slice(shot.shape[0] // 3, -shot.shape[0] // 4), slice(None))
    assert np.abs(shot[middle].astype(int) - plain[middle]).max() <= 1

    open_dialog(page)
    page.get_by_test_id("snapshot-scalebar").uncheck()
    page.get_by_test_id("snapshot-legend").uncheck()
    bare = download(page)
    assert np.array_equal(bare, plain)


def test_screen_size_full_resolution_and_a_refused_width(page: Page) -> None:
    """At Home the region is the whole image (not the letterbox around it) and Screen size its
    width on screen; Full resolution is the region's own width; a custom width above it is
    refused with the server's sentence, shown in the dialog, which stays open."""
    page.evaluate("() => window.plexzoom.viewer.viewport.goHome(true)")
    wait_drawn(page)
    request = open_dialog(page)
    zoom = page.evaluate(
        "() => { const vp = window.plexzoom.viewer.viewport;"
        " return vp.viewportToImageZoom(vp.getZoom(true)); }"
    )
    assert {k: request[k] for k in "xywh"} == {"x": 0, "y": 0, "w": 900, "h": 600}
    assert zoom < 1 and request["width"] == round(900 * zoom)
    page.get_by_label("Full resolution").check()
    full: dict[str, Any] = page.evaluate("() => window.plexzoom.snapshotRequest()")
    assert full["width"] == request["w"]
    size = page.get_by_test_id("snapshot-size")
    assert size.get_attribute("data-width") == str(request["w"])

    page.get_by_test_id("snapshot-width").fill(str(request["w"] + 100))
    assert page.get_by_label("Custom").is_checked()
    page.get_by_test_id("snapshot-download").click()
    error = page.get_by_test_id("snapshot-error")
    error.wait_for()
    assert "never enlarged" in error.inner_text()
    assert page.get_by_test_id("snapshot-download").is_enabled()
    page.keyboard.press("Escape")
    page.wait_for_selector("[data-testid=snapshot-dialog]:not([open])", state="attached")


def test_the_info_panel_says_what_the_image_is(page: Page) -> None:
    """Data type, bit depth, pixel size and channels, opened with the keyboard."""
    page.get_by_test_id("metadata-toggle").focus()
    page.keyboard.press("Enter")
    listing = page.get_by_test_id("metadata-list")
    listing.wait_for()
    field = lambda name: listing.locator(f"dd[data-field={name}]").inner_text()  # noqa: E731
    assert field("data-type") == "uint16"
    assert field("bit-depth") == "16-bit"
    assert field("pixel-size") == "0.5 µm"
    assert field("dimensions") == f"900 {TIMES} 600 px"
    assert field("channels") == "3 (DAPI, FITC, Cy5)"
    page.keyboard.press("Escape")
    listing.wait_for(state="hidden")
