"""The upload page's resumable uploads (Uppy, /v1/uploads) in a real browser, on the real stack.

Files of about 12 MiB go in 5 MiB parts (three per file). "Mid-upload" is made by holding one
chosen part's PUT in a route until the test lets it go (or drops it), never by timing.
"""

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page, Request, Route

from tests.integration.test_pipeline import QUADRANTS, quadrant_image
from tests.servers import Stack, require_redis
from tests.viewer.conftest import artifact
from tests.viewer.test_browser import screen_pixel, wait_drawn

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 1  # Redis database of this module's stack (only tests/worker/test_actors.py uses it too)
PART = 5 * 1024 * 1024
PART_PUT = re.compile(r"/v1/uploads/(?P<id>[0-9a-z]+)/parts/(?P<number>\d+)\b")
PART_URL = re.compile(r"/v1/uploads/[0-9a-z]+/parts/\d+")  # for routes: JavaScript's syntax
STATUS = "document.querySelector('[data-testid=upload-status]').textContent.trim()"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack on local-folder storage, parts of 5 MiB."""
    folder = tmp_path_factory.mktemp("resumable")
    env = {"PLEXZOOM_REDIS_URL": require_redis(_DB), "PLEXZOOM_UPLOAD_PART_BYTES": str(PART)}
    running = Stack(folder / "data", env, folder / "stack.log")
    yield running
    running.stop()


def tiff(folder: Path, name: str, width: int, height: int) -> Path:
    """An uncompressed RGB TIFF of quadrants: width x height x 3 bytes (12 MiB: three parts)."""
    path = folder / name
    quadrant_image(width, height).tiffsave(str(path), compression="none")
    assert 2 * PART < path.stat().st_size <= 3 * PART
    return path


def part_puts(page: Page) -> list[tuple[str, int]]:
    """Every part PUT the page sends from now on, as (upload id, part number)."""
    seen: list[tuple[str, int]] = []

    def record(request: Request) -> None:
        match = PART_PUT.search(urlsplit(request.url).path)
        if request.method == "PUT" and match:
            seen.append((match["id"], int(match["number"])))

    page.on("request", record)
    return seen


class PartGate:
    """Holds the first PUT of part ``number`` until released or dropped; others pass."""

    def __init__(self, page: Page, number: int) -> None:
        self.page, self.number = page, number
        self.held: Route | None = None
        self.upload_id = ""
        page.route(PART_URL, self.handle)

    def handle(self, route: Route) -> None:
        match = PART_PUT.search(urlsplit(route.request.url).path)
        if self.held is None and match and int(match["number"]) == self.number:
            self.held, self.upload_id = route, match["id"]
        else:
            route.fallback()

    def wait_held(self, timeout_s: float = 60) -> str:
        """Wait until the part's PUT is held; its upload id."""
        deadline = time.monotonic() + timeout_s
        while self.held is None:
            assert time.monotonic() < deadline, f"part {self.number} was never sent"
            self.page.wait_for_timeout(50)
        return self.upload_id

    def open(self) -> None:
        """Let later PUTs of the part through (the held one stays as it is)."""
        self.page.unroute(PART_URL, self.handle)


def stored(stack: Stack, upload_id: str) -> list[int]:
    """The part numbers the server holds."""
    answer = httpx.get(f"{stack.url}/v1/uploads/{upload_id}")
    answer.raise_for_status()
    return [p["number"] for p in answer.json()["stored"]]


def wait_stored(page: Page, stack: Stack, upload_id: str, numbers: list[int]) -> None:
    """Wait until the server holds exactly these parts."""
    deadline = time.monotonic() + 60
    while stored(stack, upload_id) != numbers:
        assert time.monotonic() < deadline, (stored(stack, upload_id), numbers)
        page.wait_for_timeout(100)


def wait_ready(page: Page, timeout_ms: int = 180_000) -> None:
    """The page's bar says the (last) image is ready."""
    page.wait_for_function(f"() => {STATUS} === 'ready'", timeout=timeout_ms)


def check_home(page: Page, width: int, height: int, name: str) -> None:
    """The viewer draws each quadrant's colour at its centre."""
    wait_drawn(page)
    shot = page.screenshot(path=artifact(f"resumable-{name}.png"))
    centres = [(1, 1), (3, 1), (1, 3), (3, 3)]
    for (cx, cy), colour in zip(centres, QUADRANTS, strict=True):
        pixel = screen_pixel(page, cx * width / 4, cy * height / 4, shot)
        assert np.allclose(pixel, colour, atol=16), (name, cx, cy, pixel)


def test_several_files_at_once_become_ready_and_draw(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Three files chosen together each go in three parts, convert and draw in the viewer."""
    ctx, blocked = context
    page = ctx.new_page()
    puts = part_puts(page)
    page.goto(stack.url)
    sizes = {"a.tif": (2400, 1800), "b.tif": (2300, 1900), "c.tif": (2500, 1700)}
    files = [tiff(tmp_path, name, w, h) for name, (w, h) in sizes.items()]
    page.set_input_files("[data-testid=file-input]", [str(f) for f in files])
    items = "[data-testid=upload-images] li"
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{items}')]"
        ".filter((li) => li.dataset.status === 'ready').length === 3",
        timeout=180_000,
    )
    page.screenshot(path=artifact("resumable-three-ready.png"))
    assert sorted(n for _, n in puts) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len({upload for upload, _ in puts}) == 3
    links = page.eval_on_selector_all(
        f"{items} [data-testid=upload-image-open]",
        "(links) => links.map((a) => [a.closest('li').querySelector('.name').textContent, a.href])",
    )
    assert sorted(name for name, _ in links) == sorted(sizes)
    # The gallery heard of each of them.
    page.wait_for_function(
        "() => document.querySelectorAll('[data-testid=gallery] li').length >= 3", timeout=20_000
    )
    for name, href in links:
        viewer = ctx.new_page()
        viewer.goto(href)
        check_home(viewer, *sizes[name], name)
        viewer.close()
    assert blocked == []


def test_a_dropped_network_mid_upload_resumes_by_itself(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The browser goes offline while part 2 is in flight; back online, the upload finishes."""
    ctx, blocked = context
    page = ctx.new_page()
    puts = part_puts(page)
    page.goto(stack.url)
    gate = PartGate(page, 2)
    source = tiff(tmp_path, "offline.tif", 2400, 1800)
    page.set_input_files("[data-testid=file-input]", str(source))
    upload_id = gate.wait_held()
    ctx.set_offline(True)
    assert gate.held is not None
    gate.held.abort("internetdisconnected")
    gate.open()
    page.wait_for_timeout(3000)  # the outage itself: a few seconds without a network
    assert "completed" not in stored_or_gone(stack, upload_id)
    ctx.set_offline(False)
    wait_ready(page)
    assert sorted({n for _, n in puts}) == [1, 2, 3]
    assert [n for _, n in puts].count(2) >= 2  # the dropped part was sent again
    image = httpx.get(f"{stack.url}/v1/images/{upload_id}").json()
    assert image["status"] == "ready"
    page.screenshot(path=artifact("resumable-offline-ready.png"))
    assert blocked == []


def stored_or_gone(stack: Stack, upload_id: str) -> str:
    """'parts N,M' while the upload is open, 'completed' once the server no longer lists it."""
    answer = httpx.get(f"{stack.url}/v1/uploads/{upload_id}")
    if answer.status_code == 404:
        return "completed"
    return "parts " + ",".join(str(p["number"]) for p in answer.json()["stored"])


def test_a_reload_mid_upload_sends_only_the_missing_parts(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Reloaded while part 3 is held, the page asks for the file again, names how far it got,
    and sends part 3 alone; the image then converts and draws."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 3)
    source = tiff(tmp_path, "reloaded.tif", 2400, 1800)
    page.set_input_files("[data-testid=file-input]", str(source))
    upload_id = gate.wait_held()
    wait_stored(page, stack, upload_id, [1, 2])
    # Golden Retriever saves the state to localStorage at most every 0.5 s.
    page.wait_for_function(
        "(id) => Object.keys(localStorage).some((k) => k.startsWith('uppyState:')"
        " && localStorage.getItem(k).includes(id))",
        arg=upload_id,
    )
    page.wait_for_timeout(600)  # the save after the last part's progress
    page.reload()  # the gate stays: it lets the part's later PUTs through
    puts = part_puts(page)
    note = page.get_by_test_id("resume-note")
    note.wait_for(state="visible", timeout=20_000)
    assert note.text_content() == "Choose reloaded.tif again to resume: 2 of 3 parts are stored."
    page.screenshot(path=artifact("resumable-choose-again.png"))
    page.set_input_files("[data-testid=file-input]", str(source))
    wait_ready(page)
    assert puts == [(upload_id, 3)]
    assert note.is_hidden()
    with page.expect_navigation():
        page.click("[data-testid=upload-open]")
    check_home(page, 2400, 1800, "reloaded")
    assert blocked == []
