"""The channel panel with the keyboard alone, in a real browser: every control is reached with Tab,
named and visibly focused; Space and Enter toggle, arrow keys step a window edge by exact native
units, in the full range and zoomed onto the histogram's data."""

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import tifffile
from playwright.sync_api import BrowserContext, Page

from tests.servers import Stack
from tests.viewer.conftest import local_stack
from tests.viewer.test_browser import wait_drawn
from tests.viewer.test_channels_browser import convert

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 9  # Redis database of this module's stack (10-12 and 14 are other browser modules')
WIDTH, HEIGHT = 600, 400
HOT = 65535  # a few saturated pixels: the full range ends far above the populated values
# What an assistive technology would read out for an element: aria-label, aria-labelledby, a
# <label>, the title, a button's text.
ACCESSIBLE_NAME = """(el) => [
    el.getAttribute("aria-label"),
    (el.getAttribute("aria-labelledby") || "").split(/\\s+/)
        .map((id) => document.getElementById(id)?.textContent || "").join(" "),
    ...[...(el.labels || [])].map((label) => label.textContent),
    el.getAttribute("title"),
    el.tagName === "BUTTON" ? el.textContent : "",
].map((text) => (text || "").trim()).find(Boolean) || ""
"""


def hot_pixel_tiff() -> bytes:
    """A uint16 OME-TIFF of 3 channels: noisy background, a ramp of signal in one third each, and
    60 saturated pixels (0.025 %, above the 99.9th percentile)."""
    rng = np.random.default_rng(9)
    planes = rng.normal(100, 5, (3, HEIGHT, WIDTH))
    ramp = np.linspace(0, 1, HEIGHT)[:, None]
    for c, bright in enumerate((4000, 9000, 20000)):
        planes[c, :, c * 200 : (c + 1) * 200] += ramp * bright
        planes[c, rng.integers(0, HEIGHT, 60), rng.integers(0, WIDTH, 60)] = HOT
    meta = {"axes": "CYX", "Channel": {"Name": ["DAPI", "FITC", "Cy5"]}}
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, planes.clip(0, HOT).astype(np.uint16), metadata=meta, ome=True)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with local-folder storage."""
    with local_stack(tmp_path_factory, "keyboard", _DB) as running:
        yield running


@pytest.fixture(scope="module")
def image(stack: Stack) -> dict[str, Any]:
    return convert(stack, hot_pixel_tiff(), "hot.ome.tif")


def focused(page: Page) -> dict[str, Any]:
    """The focused element: its test id, accessible name, whether it shows focus, its value."""
    info: dict[str, Any] = page.evaluate(
        f"""() => {{
            const el = document.activeElement;
            return {{
                testid: el.dataset?.testid || el.tagName, name: ({ACCESSIBLE_NAME})(el),
                visible: el.matches(":focus-visible"), inPanel: !!el.closest(".channel-panel"),
            }};
        }}"""
    )
    return info


def tab_to(page: Page, testid: str, key: str = "Tab", most: int = 60) -> list[dict[str, Any]]:
    """Press Tab (or Shift+Tab) until `testid` has the focus; what was focused on the way."""
    passed = []
    for _ in range(most):
        page.keyboard.press(key)
        passed.append(focused(page))
        if passed[-1]["testid"] == testid:
            return passed
    raise AssertionError(f"{testid} not reached with {key}: {[p['testid'] for p in passed]}")


def check_named_and_visible(passed: list[dict[str, Any]]) -> None:
    """Every panel control on the way had a name and a visible focus."""
    for control in passed:
        if control["inPanel"]:
            assert control["name"], f"{control['testid']} has no accessible name"
            assert control["visible"], f"{control['testid']} shows no focus"


def channel(page: Page, index: int) -> dict[str, Any]:
    """The settings of a channel the viewer mixes with, which the panel shows too."""
    setting: dict[str, Any] = page.evaluate(
        f"""() => {{
            const mixed = window.plexzoom.mixer.settings.channels.find((c) => c.index === {index});
            const shown = window.plexzoom.panel.settings.channels.find((c) => c.index === {index});
            if (JSON.stringify(mixed) !== JSON.stringify(shown)) throw new Error("mixer != panel");
            return mixed;
        }}"""
    )
    return setting


def slider_range(page: Page, index: int) -> tuple[float, float]:
    low, high = page.evaluate(
        f"""() => {{
            const s = document.querySelector('[data-testid=channel-min-range-{index}]');
            return [Number(s.min), Number(s.max)];
        }}"""
    )
    return low, high


def test_channel_panel_by_keyboard_alone(
    image: dict[str, Any], context: tuple[BrowserContext, list[str]]
) -> None:
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(image["links"]["viewer"])
    wait_drawn(page)
    stats = image["channels"][1]["stats"]

    # Visibility of FITC: Space on its box, reached with Tab from the top of the page.
    check_named_and_visible(tab_to(page, "channel-visible-1"))
    page.keyboard.press("Space")
    assert channel(page, 1)["visible"] is False
    page.keyboard.press("Space")
    assert channel(page, 1)["visible"] is True

    # Its min, on the slider over the full range: one native unit, then ten.
    check_named_and_visible(tab_to(page, "channel-min-range-1"))
    assert slider_range(page, 1) == (stats["min"], stats["max"])
    start = channel(page, 1)["min"]
    page.keyboard.press("ArrowRight")
    assert channel(page, 1)["min"] == start + 1
    page.keyboard.press("Shift+ArrowRight")
    assert channel(page, 1)["min"] == start + 11

    # Zoomed onto the data: the sliders span the populated values, the steps stay native units.
    check_named_and_visible(tab_to(page, "channel-zoom-1", "Shift+Tab"))
    zoom = "[data-testid=channel-zoom-1]"
    assert page.get_attribute(zoom, "aria-pressed") == "false"
    page.keyboard.press("Enter")
    assert page.get_attribute(zoom, "aria-pressed") == "true"
    low, high = slider_range(page, 1)
    assert stats["min"] <= low and high < stats["percentiles"]["99.9"] * 1.1 < stats["max"]
    assert high - low < (stats["max"] - stats["min"]) / 5, "zoomed: a slider pixel is worth less"
    check_named_and_visible(tab_to(page, "channel-min-range-1"))
    page.keyboard.press("ArrowRight")
    assert channel(page, 1)["min"] == start + 12
    page.keyboard.press("Shift+ArrowLeft")
    assert channel(page, 1)["min"] == start + 2

    # The max, stepped above the zoomed range: the range widens rather than clip the window.
    check_named_and_visible(tab_to(page, "channel-max-1"))
    top = channel(page, 1)["max"]
    for _ in range(int((high - top) // 10) + 3):
        page.keyboard.press("Shift+ArrowUp")
    assert channel(page, 1)["max"] > high
    assert slider_range(page, 1)[1] >= channel(page, 1)["max"]
    assert page.get_attribute(zoom, "aria-pressed") == "true"

    # Back to the full range with Space on the zoom button.
    check_named_and_visible(tab_to(page, "channel-zoom-1", "Shift+Tab"))
    page.keyboard.press("Space")
    assert page.get_attribute(zoom, "aria-pressed") == "false"
    assert slider_range(page, 1) == (stats["min"], stats["max"])
    assert page.locator("[data-testid=channel-ticks-1] span").count() in range(3, 8)
    assert blocked == []


def test_the_label_check_finds_an_unlabelled_control(
    image: dict[str, Any], context: tuple[BrowserContext, list[str]]
) -> None:
    """The check above can fail: a control without a name is caught, one with a <label> passes."""
    ctx, _ = context
    page = ctx.new_page()
    page.goto(image["links"]["viewer"])
    wait_drawn(page)
    page.evaluate(
        """() => {
            const rows = document.querySelector("[data-testid=channel-rows]");
            const bare = document.createElement("input");
            bare.dataset.testid = "bare";
            const named = document.createElement("input");
            named.dataset.testid = "named";
            const label = Object.assign(document.createElement("label"), {textContent: "named "});
            label.append(named);
            rows.before(label, bare);
        }"""
    )
    tab_to(page, "named")
    assert focused(page)["name"] == "named"
    tab_to(page, "bare")
    bare = focused(page)
    assert bare["inPanel"] and bare["visible"] and bare["name"] == ""
    with pytest.raises(AssertionError, match="bare has no accessible name"):
        check_named_and_visible([bare])
