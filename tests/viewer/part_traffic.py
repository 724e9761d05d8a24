"""Part PUTs of the upload page seen from Playwright: recognised on either backend, counted,
and held at a chosen part so that "mid-upload" is a state the test makes, not a moment it hopes
for; and the files, waits and pixel checks the resumable-upload browser tests share."""

import base64
import re
import time
import zlib
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
from playwright.sync_api import BrowserContext, Page, Request, Route

from tests.integration.test_pipeline import QUADRANTS, quadrant_image
from tests.servers import Stack
from tests.viewer.conftest import artifact
from tests.viewer.test_browser import screen_pixel, wait_drawn

PART = 5 * 1024 * 1024  # PLEXZOOM_UPLOAD_PART_BYTES of the tests' stacks: the smallest part
LOCAL_PART = re.compile(r"/uploads/([0-9a-z]+)/parts/(\d+)$")  # the api's own part URLs
STATUS = "document.querySelector('[data-testid=upload-status]').textContent.trim()"


def tiff(folder: Path, name: str, width: int, height: int) -> Path:
    """An uncompressed RGB TIFF of quadrants: width x height x 3 bytes (12 MiB: three parts)."""
    path = folder / name
    quadrant_image(width, height).tiffsave(str(path), compression="none")
    assert 2 * PART < path.stat().st_size <= 3 * PART
    return path


def part_of(url: str) -> tuple[str, int] | None:
    """(upload, part number) of a part URL: the api's own, or S3's presigned UploadPart."""
    parts = urlsplit(url)
    local = LOCAL_PART.search(parts.path)
    if local:
        return local[1], int(local[2])
    query = parse_qs(parts.query)
    if "uploadId" in query and "partNumber" in query:
        return query["uploadId"][0], int(query["partNumber"][0])
    return None


def is_part_url(url: str) -> bool:
    return part_of(url) is not None


class PartPut(NamedTuple):
    """One part PUT the page sent."""

    origin: str
    upload: str
    number: int
    crc32: str | None  # its x-amz-checksum-crc32 header


def part_puts(page: Page) -> list[PartPut]:
    """Every part PUT the page sends from now on."""
    seen: list[PartPut] = []

    def record(request: Request) -> None:
        found = part_of(request.url)
        if request.method == "PUT" and found is not None:
            url = urlsplit(request.url)
            crc32 = request.headers.get("x-amz-checksum-crc32")
            seen.append(PartPut(f"{url.scheme}://{url.netloc}", *found, crc32))

    page.on("request", record)
    return seen


class PartGate:
    """Holds the first PUT of part ``number`` until the test drops it; later ones pass."""

    def __init__(self, page: Page, number: int) -> None:
        self.page, self.number = page, number
        self.held: Route | None = None
        page.route(is_part_url, self.handle)

    def handle(self, route: Route) -> None:
        found = part_of(route.request.url) if route.request.method == "PUT" else None
        if self.held is None and found and found[1] == self.number:
            self.held = route
            return
        route.fallback()

    def wait_held(self, stack: Stack, timeout_s: float = 60) -> str:
        """Wait until the part's PUT is held; the id of the image being uploaded."""
        deadline = time.monotonic() + timeout_s
        while self.held is None:
            assert time.monotonic() < deadline, f"part {self.number} was never sent"
            self.page.wait_for_timeout(50)
        newest = httpx.get(f"{stack.url}/v1/images", params={"limit": 1}).json()["images"][0]
        assert newest["status"] == "uploading"
        return str(newest["id"])

    def open(self) -> None:
        """Stop holding. (Playwright then lets a PUT still held go on: drop it first.)"""
        self.page.unroute(is_part_url, self.handle)


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


def part_crc32s(path: Path) -> list[str]:
    """The x-amz-checksum-crc32 header of each of a file's parts, in order: base64 of the
    big-endian CRC-32."""
    data = path.read_bytes()
    return [
        base64.b64encode(zlib.crc32(data[at : at + PART]).to_bytes(4, "big")).decode()
        for at in range(0, len(data), PART)
    ]


def wait_saved(page: Page, upload_id: str) -> None:
    """Wait until Golden Retriever has saved the upload's state (at most every 0.5 s)."""
    page.wait_for_function(
        "(id) => Object.keys(localStorage).some((k) => k.startsWith('uppyState:')"
        " && localStorage.getItem(k).includes(id))",
        arg=upload_id,
    )
    page.wait_for_timeout(600)  # the save after the last part's progress


BLOBS_KEPT = """() => new Promise((resolve) => {
    const open = indexedDB.open('uppy-blobs');
    open.onsuccess = () => {
        const db = open.result;
        if (!db.objectStoreNames.contains('files')) return resolve(0);
        const count = db.transaction('files').objectStore('files').count();
        count.onsuccess = () => resolve(count.result);
    };
    open.onerror = () => resolve(0);
})"""


def reload_mid_upload(
    stack: Stack, context: tuple[BrowserContext, list[str]], folder: Path, part_origin: str
) -> None:
    """Upload a file of three parts, reload while part 3 is held, choose the file again: only
    part 3 is sent (to ``part_origin``), then the image is ready and drawn."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 3)
    before = part_puts(page)
    source = tiff(folder, "reloaded.tif", 2400, 1800)
    page.set_input_files("[data-testid=file-input]", str(source))
    upload_id = gate.wait_held(stack)
    wait_stored(page, stack, upload_id, [1, 2])
    assert {p.origin for p in before} == {part_origin}
    wait_saved(page, upload_id)
    page.reload()  # the gate stays: it lets the part's later PUTs through
    after = part_puts(page)
    note = page.get_by_test_id("resume-note")
    note.wait_for(state="visible", timeout=20_000)
    assert note.text_content() == "Choose reloaded.tif again to resume: 2 of 3 parts are stored."
    page.screenshot(path=artifact("resumable-choose-again.png"))
    page.set_input_files("[data-testid=file-input]", str(source))
    wait_ready(page)
    assert [(p.origin, p.number) for p in after] == [(part_origin, 3)]
    assert [p.crc32 for p in after] == [part_crc32s(source)[2]]
    assert note.is_hidden()
    with page.expect_navigation():
        page.click("[data-testid=upload-open]")
    check_home(page, 2400, 1800, "reloaded")
    assert blocked == []
