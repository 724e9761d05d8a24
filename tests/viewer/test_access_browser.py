"""A private server in a real browser: the key is asked for once, tiles keep drawing after
their first 2-second tokens have expired (plain DZI, live channel mix, server-rendered mix)."""

import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Dialog, Page, Response

from tests.integration.test_pipeline import quadrant_image
from tests.servers import Stack, require_redis
from tests.viewer.conftest import artifact
from tests.viewer.test_browser import HEIGHT, WIDTH, check_quadrants, wait_drawn
from tests.viewer.test_channels_browser import three_channel_tiff

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 14  # Redis database of this module's stack
KEY = "browser-test-key-5d2e"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOKEN_TTL_S = 2


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with an API key and tile tokens that live two seconds."""
    folder = tmp_path_factory.mktemp("access")
    env = {
        "PLEXZOOM_REDIS_URL": require_redis(_DB),
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_TOKEN_TTL_S": str(TOKEN_TTL_S),
    }
    running = Stack(folder / "data", env, folder / "log")
    yield running
    running.stop()


def upload(stack: Stack, data: bytes, name: str) -> dict[str, Any]:
    """Upload with the key and wait until the image is ready."""
    created = httpx.post(
        f"{stack.url}/v1/images", files={"file": (name, data)}, headers=AUTH, timeout=60
    )
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        image: dict[str, Any] = httpx.get(created.json()["links"]["self"], headers=AUTH).json()
        if image["status"] in ("ready", "failed"):
            assert image["status"] == "ready", image
            return image
        time.sleep(0.2)
    raise AssertionError("the upload did not convert in time")


class TileLog:
    """Every /tiles/ response a page received: status and the token it carried."""

    def __init__(self, page: Page) -> None:
        self.seen: list[tuple[int, str | None, str]] = []
        page.on("response", self.record)

    def record(self, response: Response) -> None:
        parts = urlsplit(response.url)
        if parts.path.startswith("/tiles/"):
            token = parse_qs(parts.query).get("t", [None])[0]
            self.seen.append((response.status, token, parts.path))

    def tokens(self) -> set[str | None]:
        return {token for _, token, _ in self.seen}

    def refused(self) -> list[str]:
        """Tiles refused: a token that ran out while the request waited (a busy machine);
        the viewer renews it and OpenSeadragon's retry fetches the tile again."""
        return [path for status, _, path in self.seen if status >= 400]


def answer_prompts(page: Page, key: str | None) -> list[str]:
    """Answer every key prompt with ``key`` (None: dismiss); returns the questions asked."""
    asked: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if key is None:
            dialog.dismiss()
        else:
            dialog.accept(key)

    page.on("dialog", on_dialog)
    return asked


def outlive_first_tokens(page: Page) -> str:
    """Wait until the token of the first view has expired and been renewed a few times."""
    first: str = page.evaluate("() => window.plexzoom.token.value")
    assert first, "a private image has a tile token"
    page.wait_for_timeout(TOKEN_TTL_S * 1000 + 1500)
    assert page.evaluate("() => window.plexzoom.token.renewals") >= 2
    assert page.evaluate("() => window.plexzoom.token.value") != first
    return first


def check_fetched_later(tiles: TileLog, mark: int, first: str, wanted: str) -> None:
    """Tiles fetched after ``mark`` came through, with tokens newer than ``first``."""
    later = [(status, token) for status, token, path in tiles.seen[mark:] if wanted in path]
    assert later, f"no {wanted} tiles were fetched after the first token expired"
    assert first not in {token for _, token in later}
    assert any(status == 200 for status, _ in later)


def test_key_asked_once_and_tiles_keep_drawing_after_tokens_expire(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    ctx, blocked = context
    source = io.BytesIO()
    source.write(quadrant_image(WIDTH, HEIGHT).write_to_buffer(".png"))
    image = upload(stack, source.getvalue(), "quadrants.png")
    page = ctx.new_page()
    asked = answer_prompts(page, KEY)
    tiles = TileLog(page)
    page.goto(image["links"]["viewer"])
    wait_drawn(page)
    assert len(asked) == 1 and "API key" in asked[0]
    first = outlive_first_tokens(page)
    mark = len(tiles.seen)
    check_quadrants(page, "private")  # zooms in: full-resolution tiles fetched with new tokens
    check_fetched_later(tiles, mark, first, "/image_files/12/")
    assert None not in tiles.tokens()
    assert page.locator("#view-warning").is_hidden(), page.locator("#view-warning").text_content()
    print(f"{len(tiles.refused())} of {len(tiles.seen)} tile requests refused and retried")
    # The shareable address carries the view, never the key or a token.
    page.wait_for_function("() => location.hash.includes('z=')")
    shared = page.url
    assert KEY not in shared and "t=" not in shared
    # The key lasts for the tab's session: a reload does not ask again.
    page.reload()
    wait_drawn(page)
    assert len(asked) == 1
    assert blocked == []

    # Someone who gets the shared address without the key is asked for one and sees no tiles.
    stranger = ctx.browser.new_context() if ctx.browser else None
    assert stranger is not None
    try:
        other = stranger.new_page()
        other_asked = answer_prompts(other, None)
        other_tiles = TileLog(other)
        other.goto(shared)
        error = other.wait_for_selector("[data-testid=view-error]:not([hidden])", timeout=20_000)
        assert "API key" in (error.text_content() or "")
        assert len(other_asked) == 1
        assert other_tiles.seen == []
        other.screenshot(path=artifact("access-no-key.png"))
    finally:
        stranger.close()


@pytest.mark.parametrize("mix", ["browser", "server"])
def test_channel_mix_keeps_drawing_after_tokens_expire(
    stack: Stack, context: tuple[BrowserContext, list[str]], mix: str
) -> None:
    ctx, _ = context
    image = upload(stack, three_channel_tiff(), "three.ome.tif")
    page = ctx.new_page()
    answer_prompts(page, KEY)
    tiles = TileLog(page)
    # Zoomed into the top-left corner: the rest of the full-resolution tiles are not loaded yet.
    page.goto(f"{image['links']['viewer']}&mix={mix}#x=120&y=100&z=4")
    wait_drawn(page)
    assert page.evaluate("() => document.body.dataset.mixMode") == mix
    before = page.evaluate("() => window.plexzoom.mixer.stats.downloads")
    first = outlive_first_tokens(page)
    mark = len(tiles.seen)
    page.evaluate("""() => {
        const v = window.plexzoom.viewer;
        const c = v.viewport.imageToViewportCoordinates(new OpenSeadragon.Point(780, 500));
        v.viewport.zoomTo(v.viewport.imageToViewportZoom(4), null, true);
        v.viewport.panTo(c, true);
    }""")
    wait_drawn(page)
    page.screenshot(path=artifact(f"access-mix-{mix}.png"))
    assert page.evaluate("() => window.plexzoom.mixer.stats.downloads") > before
    check_fetched_later(tiles, mark, first, "/render_files/" if mix == "server" else "/c2_files/")
    assert page.locator("#view-warning").is_hidden(), page.locator("#view-warning").text_content()
    print(f"{len(tiles.refused())} of {len(tiles.seen)} tile requests refused and retried")


def test_upload_page_asks_once_and_sends_the_key(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The gallery asks for the key, the upload (XMLHttpRequest) sends it, thumbnails load."""
    ctx, blocked = context
    page = ctx.new_page()
    asked = answer_prompts(page, KEY)
    tiles = TileLog(page)
    page.goto(stack.url)
    source = tmp_path / "small.png"
    quadrant_image(600, 400).write_to_file(str(source))
    page.set_input_files("[data-testid=file-input]", str(source))
    status = "document.querySelector('[data-testid=upload-status]').textContent.trim()"
    page.wait_for_function(f"() => {status} === 'ready'", timeout=120_000)
    page.reload()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=gallery] img')]"
        ".some((img) => img.complete && img.naturalWidth > 0)",
        timeout=20_000,
    )
    assert len(asked) == 1
    assert tiles.seen and all(status == 200 and token for status, token, _ in tiles.seen)
    assert blocked == []


def test_the_running_stack_logs_each_request_without_secrets(stack: Stack) -> None:
    """The web process's access log (stderr, batched): key fingerprint and image id per line,
    never the key or a token."""
    image = upload(stack, quadrant_image(300, 200).write_to_buffer(".png"), "log.png")
    tile = httpx.get(image["links"]["thumbnail"])
    assert tile.status_code == 200
    fingerprint = hashlib.sha256(KEY.encode()).hexdigest()[:8]
    log = Path(stack.log.name)
    wanted = [
        f"'/v1/images/{image['id']}' 200 key={fingerprint} image={image['id']}",
        f"'{urlsplit(image['links']['thumbnail']).path}' 200 key=- image={image['id']}",
    ]
    deadline = time.monotonic() + 10
    while not all(line in log.read_text(errors="replace") for line in wanted):
        assert time.monotonic() < deadline, f"missing access log lines: {wanted}"
        time.sleep(0.1)
    text = log.read_text(errors="replace")
    assert KEY not in text
    assert image["links"]["token"] not in text
