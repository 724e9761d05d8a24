"""The viewer a person can trust, in a real browser: shared links open where they were made, both
drawers report ready, the pages say what the server says."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page

from tests.integration.test_pipeline import quadrant_image
from tests.servers import Stack
from tests.viewer.conftest import local_stack
from tests.viewer.test_browser import wait_drawn
from tests.viewer.test_channels_browser import convert, three_channel_tiff

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 12  # Redis database of this module's stack (modules run one after another)
SHARED = {"x": 412.3, "y": 281.7, "z": 1.983}  # image px at the centre; screen px per image px
TOLERANCE = 0.005  # the 0.5 %


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with local-folder storage."""
    with local_stack(tmp_path_factory, "views", _DB) as running:
        yield running


@pytest.fixture(scope="module")
def images(stack: Stack) -> dict[str, dict[str, Any]]:
    """A plain RGB image and a 3-channel one (mixed live, with the channel panel), 900 x 600."""
    rgb = quadrant_image(900, 600).write_to_buffer(".png")
    return {
        "rgb": convert(stack, rgb, "quadrants.png"),
        "channels": convert(stack, three_channel_tiff(), "three.ome.tif"),
    }


def view_of(page: Page) -> dict[str, float]:
    """The viewer's settled view: centre in image px, zoom in screen px per image px, and the
    same zoom of Home."""
    view: dict[str, float] = page.evaluate("""() => {
        const vp = window.plexzoom.viewer.viewport;
        const c = vp.viewportToImageCoordinates(vp.getCenter(true));
        return {x: c.x, y: c.y, z: vp.viewportToImageZoom(vp.getZoom(true)),
                home: vp.viewportToImageZoom(vp.getHomeZoom()),
                width: window.plexzoom.viewer.element.clientWidth};
    }""")
    return view


def open_view(ctx: BrowserContext, url: str) -> Page:
    page = ctx.new_page()
    page.goto(url)
    wait_drawn(page)
    return page


def shared_address(page: Page) -> str:
    """The address a person would copy: once it holds the view (and the channel settings)."""
    page.wait_for_function(
        "() => /z=/.test(location.hash)"
        " && (window.plexzoom.mode !== 'mix' || /c=/.test(location.hash))"
    )
    return page.url


def assert_same_view(got: dict[str, float], want: dict[str, float], what: str) -> None:
    assert abs(got["z"] / want["z"] - 1) <= TOLERANCE, (what, got, want)
    # The centre within 0.5 % of the visible width (in image px) and a rounding of the address.
    slack = TOLERANCE * got["width"] / got["z"] + 0.5
    assert abs(got["x"] - want["x"]) <= slack and abs(got["y"] - want["y"]) <= slack, (what, got)


@pytest.mark.parametrize("kind", ["rgb", "channels"])
def test_a_shared_link_opens_the_same_view_however_often_it_is_reshared(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any], kind: str
) -> None:
    """Open a link with a view, copy the address the page shows, open that: three times over,
    the centre and zoom stay those of the first link (the multi-channel panel once cost 24 %
    of the zoom per share)."""
    ctx, blocked = context
    image = images[kind]
    url = f"{stack.url}/view.html?id={image['id']}#x={SHARED['x']}&y={SHARED['y']}&z={SHARED['z']}"
    for share in range(4):
        page = open_view(ctx, url)
        assert_same_view(view_of(page), SHARED, f"{kind}, share {share}")
        url = shared_address(page)
        page.close()
    assert "z=1.983" in url, url
    assert blocked == []


@pytest.mark.parametrize("kind", ["rgb", "channels"])
def test_the_first_view_is_home(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any], kind: str
) -> None:
    """Without a view in the address the image opens at Home, the whole image in view."""
    ctx, _blocked = context
    page = open_view(ctx, f"{stack.url}/view.html?id={images[kind]['id']}")
    view = view_of(page)
    assert abs(view["z"] / view["home"] - 1) <= TOLERANCE, view
    assert_same_view(view, {"x": 450, "y": 300, "z": view["home"]}, kind)


def test_collapsing_the_channel_panel_keeps_the_image_scale(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """The viewer grows when the panel folds away, but the image stays at the same scale and
    centre, and a link made then opens at that view with the panel open."""
    ctx, _blocked = context
    image = images["channels"]
    url = f"{stack.url}/view.html?id={image['id']}#x={SHARED['x']}&y={SHARED['y']}&z={SHARED['z']}"
    page = open_view(ctx, url)
    before = view_of(page)
    page.get_by_test_id("panel-toggle").click()
    page.wait_for_function(f"() => window.plexzoom.viewer.element.clientWidth > {before['width']}")
    wait_drawn(page)
    after = view_of(page)
    assert after["width"] > before["width"]
    assert page.get_by_test_id("channel-panel").bounding_box()["width"] <= 40  # a strip, not 115 px
    assert_same_view(after, SHARED, "collapsed")
    reopened = open_view(ctx, shared_address(page))
    assert_same_view(view_of(reopened), SHARED, "reopened")


@pytest.mark.parametrize("drawer", ["webgl", "canvas"])
@pytest.mark.parametrize("kind", ["rgb", "channels"])
def test_the_viewer_reports_ready_with_either_drawer(
    stack: Stack,
    context: tuple[BrowserContext, list[str]],
    images: dict[str, Any],
    kind: str,
    drawer: str,
) -> None:
    """Both of OpenSeadragon's drawers (chosen with ?drawer=) draw the first view completely and
    say so (software WebGL here: headless chromium has no GPU)."""
    ctx, _blocked = context
    page = open_view(ctx, f"{stack.url}/view.html?id={images[kind]['id']}&drawer={drawer}")
    assert page.evaluate("() => window.plexzoom.viewer.drawer.getType()") == drawer
    assert page.evaluate("() => window.plexzoom.viewer.world.getItemAt(0).getFullyLoaded()")


def test_software_webgl_gets_the_canvas_drawer(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """Headless chromium's WebGL is SwiftShader, on the CPU: each WebGL frame there cost 170-500 ms
    and a first view took 10-40 s to be fully drawn, so plain images get the canvas drawer."""
    ctx, _blocked = context
    page = open_view(ctx, images["rgb"]["links"]["viewer"])
    renderer = page.evaluate("""() => {
        const gl = document.createElement('canvas').getContext('webgl');
        const info = gl.getExtension('WEBGL_debug_renderer_info');
        return gl.getParameter(info.UNMASKED_RENDERER_WEBGL);
    }""")
    assert "SwiftShader" in renderer
    assert page.evaluate("() => window.plexzoom.viewer.drawer.getType()") == "canvas"


def test_the_upload_page_lists_the_formats_the_server_takes(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """The drop zone names every format of GET /v1/formats (once it listed 4 of the 8)."""
    ctx, _blocked = context
    formats = httpx.get(f"{stack.url}/v1/formats").json()["formats"]
    page = ctx.new_page()
    page.goto(f"{stack.url}/")
    hint = page.get_by_test_id("formats-hint")
    page.wait_for_function(
        "() => /NumPy/.test(document.getElementById('formats-hint').textContent)"
    )
    text = hint.text_content() or ""
    assert len(formats) == 11  # 8, and since issue 13 DICOM WSI, Sakura SVSLIDE and slide zips
    for entry in formats:
        assert entry["label"] in text, (entry, text)


def test_a_bad_id_says_so_in_the_badge_too(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """An image that does not exist shows its error and a badge that is no longer 'loading'."""
    ctx, _blocked = context
    page = ctx.new_page()
    page.goto(f"{stack.url}/view.html?id=7ybq00000000000000000000zz")
    page.get_by_test_id("view-error").wait_for()
    assert page.get_by_test_id("view-status").text_content() == "not available"


def wait_settled(page: Page) -> None:
    """Wait until the viewport's animation has reached its target zoom and centre."""
    page.wait_for_function("""() => {
        const vp = window.plexzoom.viewer.viewport;
        const [now, target] = [vp.getCenter(true), vp.getCenter(false)];
        return Math.abs(vp.getZoom(true) / vp.getZoom(false) - 1) < 1e-6
            && Math.abs(now.x - target.x) < 1e-9 && Math.abs(now.y - target.y) < 1e-9;
    }""")


def tab_to(page: Page, name: str, limit: int = 60) -> None:
    """Press Tab until the control called ``name`` has the focus (at most ``limit`` times)."""
    script = (
        "() => document.activeElement?.getAttribute('aria-label') || document.activeElement?.title"
    )
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(script) == name:
            return
    raise AssertionError(f"{name!r} cannot be reached with Tab")


def test_the_viewer_controls_work_from_the_keyboard(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """Zoom in with Tab and Enter, back Home with Tab and Space; every row control is labelled."""
    ctx, _blocked = context
    page = open_view(ctx, f"{stack.url}/view.html?id={images['channels']['id']}")
    home = view_of(page)["z"]
    tab_to(page, "Zoom in")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.plexzoom.viewer.viewport.getZoom(false) > "
                           "window.plexzoom.viewer.viewport.getHomeZoom() * 1.5")  # fmt: skip
    wait_settled(page)
    assert view_of(page)["z"] > home * 1.5
    tab_to(page, "Go home")
    page.keyboard.press(" ")
    wait_settled(page)
    assert abs(view_of(page)["z"] / home - 1) <= TOLERANCE
    label = page.get_by_test_id("channel-gamma-0").evaluate("(e) => e.closest('label').textContent")
    assert label.startswith("gamma")


def test_full_page_keeps_the_channel_panel_and_the_scale_bar(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """The full-page button fills the screen with the viewer, the channel panel and the scale bar
    (OpenSeadragon's own full page showed the viewer alone); pressed again, it leaves."""
    ctx, _blocked = context
    page = open_view(ctx, f"{stack.url}/view.html?id={images['channels']['id']}")
    page.get_by_test_id("fullpage").click()
    page.wait_for_function("() => document.fullscreenElement !== null")
    inside = page.evaluate("""() => ['channel-panel', 'scalebar', 'viewer'].map(
        (id) => document.fullscreenElement.contains(document.getElementById(id)))""")
    assert inside == [True, True, True]
    assert page.get_by_test_id("channel-panel").is_visible()
    assert page.get_by_test_id("scalebar").is_visible()
    page.get_by_test_id("fullpage").click()
    page.wait_for_function("() => document.fullscreenElement === null")


def test_arrow_keys_move_a_window_edge_by_one_native_unit(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """On a uint16 channel a slider pixel spans many units; the arrow keys step exactly one (Shift:
    ten), on the slider and in the number box, and the mix follows."""
    ctx, _blocked = context
    page = open_view(ctx, f"{stack.url}/view.html?id={images['channels']['id']}")

    def window() -> tuple[float, float]:
        first = page.evaluate("() => window.plexzoom.panel.settings.channels[0]")
        return first["min"], first["max"]

    low, high = window()
    page.get_by_test_id("channel-min-range-0").focus()
    page.keyboard.press("ArrowRight")
    assert window() == (low + 1, high)
    page.keyboard.press("Shift+ArrowRight")
    assert window() == (low + 11, high)
    page.get_by_test_id("channel-max-0").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowDown")
    assert window() == (low + 11, high - 11)


def test_auto_reset_and_the_converters_settings(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """Auto puts a channel back on the converter's window; after "Save as default", Reset
    returns to the saved settings and "Converter's" to the converter's own."""
    ctx, _blocked = context
    image = images["channels"]
    converter = [(c["window"]["min"], c["window"]["max"]) for c in image["channels"]]
    page = open_view(ctx, f"{stack.url}/view.html?id={image['id']}")

    def windows() -> list[tuple[float, float]]:
        channels = page.evaluate("() => window.plexzoom.panel.settings.channels")
        return [(c["min"], c["max"]) for c in channels]

    assert windows() == converter
    page.get_by_test_id("channel-max-range-1").focus()
    page.keyboard.press("Shift+ArrowLeft")
    moved = windows()
    assert moved[1] == (converter[1][0], converter[1][1] - 10)
    page.get_by_test_id("channel-auto-1").click()
    assert windows() == converter
    page.get_by_test_id("channel-max-range-1").focus()
    page.keyboard.press("Shift+ArrowLeft")
    page.get_by_test_id("channels-save").click()
    page.get_by_test_id("panel-status").filter(has_text="Saved").wait_for()
    page.get_by_test_id("channel-max-range-2").focus()
    page.keyboard.press("Shift+ArrowLeft")
    page.get_by_test_id("channels-reset").click()
    assert windows() == moved  # the saved defaults
    page.get_by_test_id("channels-converter").click()
    assert windows() == converter
    # Leave the module's image as it came (other tests open it with its defaults).
    channels = [
        {
            "index": c["index"],
            "color": c["color"],
            "min": c["window"]["min"],
            "max": c["window"]["max"],
        }
        for c in image["channels"]
    ]
    put = httpx.put(f"{stack.url}/v1/images/{image['id']}/render", json={"channels": channels})
    put.raise_for_status()


def test_gallery_cards_tell_what_and_when_and_duplicates_apart(
    stack: Stack, context: tuple[BrowserContext, list[str]], images: dict[str, Any]
) -> None:
    """A card names channels, type and pixel size, the upload time and a short id, so two
    uploads of one file can be told apart."""
    ctx, _blocked = context
    again = convert(stack, three_channel_tiff(), "three.ome.tif")
    first = images["channels"]
    page = ctx.new_page()
    page.goto(f"{stack.url}/")
    metas = []
    for image in (first, again):
        meta = page.get_by_test_id(f"meta-{image['id']}")
        meta.wait_for()
        metas.append(meta.text_content() or "")
    assert metas[0].startswith("3 channels · uint16 · 0.5 µm/px · 20"), metas[0]
    assert f"#{first['id'][-6:]}" in metas[0] and f"#{again['id'][-6:]}" in metas[1]
    assert metas[0] != metas[1]
    httpx.delete(f"{stack.url}/v1/images/{again['id']}").raise_for_status()
