"""The render model's two implementations agree: plexzoom.core.render and render.js in chromium.

Both get the same generated inputs (random codes, LUTs of a uint16-like and a float-like channel,
windows, gammas, hidden channels, colours that saturate); their pixels must agree within 2/255.
"""

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page

from plexzoom.core.render import (
    ChannelRender,
    RenderSettings,
    format_number,
    render,
    settings_from_query,
    settings_to_query,
    visible_tables,
)

pytestmark = pytest.mark.browser
VIEWER = Path(__file__).resolve().parents[2] / "viewer"
SIZE = 64
SEEDS = [1, 2, 3, 4]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def viewer_url() -> Iterator[str]:
    """The viewer folder served by a loopback static server in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(VIEWER)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(context: tuple[BrowserContext, list[str]], viewer_url: str) -> Iterator[Page]:
    """A page on the viewer's origin, so render.js can be imported."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(f"{viewer_url}/js/lib/render.js")
    yield page
    assert blocked == []


def generated_luts(rng: np.random.Generator) -> list[list[float]]:
    """Five strictly increasing 256-entry LUTs: uint16-like, float-like, 12-bit, log, linear."""
    uint16 = np.sort(rng.choice(65536, 256, replace=False)).astype(float)
    floats = -0.37 + np.cumsum(rng.exponential(1e-3, 256))
    twelve_bit = np.cumsum(rng.integers(1, 32, 256)).astype(float)
    logarithmic = 10 ** np.linspace(-3, 5, 256)
    linear = np.arange(256, dtype=float)
    return [lut.tolist() for lut in (uint16, floats, twelve_bit, logarithmic, linear)]


def generated_settings(rng: np.random.Generator, luts: list[list[float]]) -> RenderSettings:
    """Random windows in each LUT; gammas 0.5, 2.2 and more; a hidden channel; saturating reds."""
    colors = ["#ff0000", "#ff8000", "#" + bytes(rng.integers(0, 256, 3).tolist()).hex(), "#00ffff"]
    colors.append("#ffffff")
    gammas = [0.5, 2.2, float(rng.uniform(0.3, 3)), 1.0, 2.0]
    channels = []
    for i, lut in enumerate(luts):
        low, high = sorted(rng.uniform(lut[0], lut[-1], 2).tolist())
        if i == 1:
            low = float(rng.uniform(lut[0], lut[0] + (lut[-1] - lut[0]) / 8))  # a bright channel
        if i == 4:
            low = high = float(lut[int(rng.integers(1, 255))])  # max <= min: a threshold
        channels.append(
            ChannelRender(
                index=i, visible=i != 3, color=colors[i], min=low, max=high, gamma=gammas[i]
            )
        )
    return RenderSettings(channels=channels)


def js_render(
    page: Page, luts: list[list[float]], settings: dict[str, Any], codes: list[list[int]]
) -> Any:
    """Tables, pixels (RGB) and query of render.js, reading codes from RGBA arrays (stride 4)."""
    return page.evaluate(
        """async ({luts, settings, codes, n}) => {
            const r = await import("/js/lib/render.js");
            const visible = r.visibleTables(settings, luts);
            const rgba = visible.map(([i]) => {
                const a = new Uint8ClampedArray(n * 4).fill(255);
                codes[i].forEach((c, p) => { a[4 * p] = a[4 * p + 1] = a[4 * p + 2] = c; });
                return a;
            });
            const out = r.renderInto(new Uint8ClampedArray(n * 4), rgba, visible.map(([, t]) => t));
            return {
                indexes: visible.map(([i]) => i),
                tables: visible.map(([, t]) => Array.from(t)),
                rgb: Array.from(out).filter((_, k) => k % 4 !== 3),
                alpha: Array.from(out).filter((_, k) => k % 4 === 3).every((a) => a === 255),
                query: r.settingsToQuery(settings),
            };
        }""",
        {"luts": luts, "settings": settings, "codes": codes, "n": SIZE * SIZE},
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_pixels_agree(page: Page, seed: int) -> None:
    rng = np.random.default_rng(seed)
    luts = generated_luts(rng)
    settings = generated_settings(rng, luts)
    codes = rng.integers(0, 256, (5, SIZE, SIZE), dtype=np.uint8)
    codes[:, 0, :2] = [0, 255]  # both ends of every table
    codes[0:2, 1] = 255  # red and orange at full: saturates red
    visible = visible_tables(settings, luts)
    expected = render([codes[i] for i, _ in visible], [table for _, table in visible])

    got = js_render(page, luts, settings.model_dump(), codes.reshape(5, -1).tolist())

    assert got["indexes"] == [i for i, _ in visible] == [0, 1, 2, 4]
    for (i, table), js_table in zip(visible, got["tables"], strict=True):
        js = np.array(js_table, np.float32).reshape(256, 3)
        assert np.allclose(js, table, rtol=1e-6, atol=0), f"channel {i} tables differ"
    pixels = np.array(got["rgb"], np.int16).reshape(SIZE, SIZE, 3)
    diff = np.abs(pixels - expected.astype(np.int16))
    assert diff.max() <= 2, f"{np.count_nonzero(diff)} values differ, at most by {diff.max()}"
    assert got["alpha"]
    assert np.count_nonzero(diff) <= 2, "expected exact agreement but for rare pow() ulps"
    assert (expected[1, :, 0] == 255).all()  # the saturating row really saturates
    assert got["query"] == settings_to_query(settings)


def test_query_encoding_agrees(page: Page) -> None:
    rng = np.random.default_rng(7)
    luts = generated_luts(rng)
    settings = generated_settings(rng, luts)
    settings.channels[0].min = -1.5e-7
    settings.channels[0].max = 1e21
    settings.channels[1].max = 1 / 3
    query = settings_to_query(settings)
    numbers = (rng.standard_normal(2000) * 10.0 ** rng.integers(-30, 30, 2000)).tolist()
    numbers += [0.0, -0.0, 1e-6, 1e-7, 1e20, 1e21, 123456789.125, 5e-324, 1.7976931348623157e308]
    bad = ["c=0:ff00ff:1", "c=9:ff00ff:1:2", "c=0:red:1:2", "c=0:ff00ff:nan:2", "c=0:ff00ff:1:2:0"]
    bad += ["c=0:ff00ff:1:2:25.5", "c=0:ff00ff:1:2,0:ff00ff:1:2", "c=a&c=b", "c=0:ff00ff:1e+5:2"]
    got = page.evaluate(
        """async ({settings, query, numbers, bad}) => {
            const r = await import("/js/lib/render.js");
            const messages = bad.map((q) => {
                try { r.settingsFromQuery(q, settings); } catch (e) { return e.message; }
                return null;
            });
            return {
                query: r.settingsToQuery(settings),
                parsed: r.settingsFromQuery(query, settings),
                numbers: numbers.map(r.formatNumber),
                messages,
            };
        }""",
        {"settings": settings.model_dump(), "query": query, "numbers": numbers, "bad": bad},
    )
    assert got["query"] == query
    assert got["parsed"] == settings_from_query(got["query"], settings).model_dump()
    assert got["parsed"] == settings.model_dump()
    assert got["numbers"] == [format_number(x) for x in numbers]
    python_messages = []
    for q in bad:
        with pytest.raises(ValueError) as info:
            settings_from_query(q, settings)
        python_messages.append(str(info.value))
    assert got["messages"] == python_messages
