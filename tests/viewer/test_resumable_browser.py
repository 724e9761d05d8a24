"""The upload page's resumable uploads (Uppy, /v1/uploads) in a real browser, on the real stack
with local-folder storage.

Files of about 12 MiB go in 5 MiB parts (three per file). "Mid-upload" is made by holding one
chosen part's PUT in a route until the test drops it (tests/viewer/part_traffic.py), never by
timing.
"""

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import BrowserContext, Request, Route
from playwright.sync_api import Error as PlaywrightError

from tests.integration.test_pipeline import quadrant_image
from tests.servers import Stack, require_redis
from tests.viewer.conftest import artifact
from tests.viewer.part_traffic import (
    BLOBS_KEPT,
    PART,
    STATUS,
    PartGate,
    check_home,
    is_part_url,
    part_crc32s,
    part_of,
    part_puts,
    reload_mid_upload,
    tiff,
    wait_ready,
    wait_saved,
    wait_stored,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 1  # this module's Redis database (tests/worker/test_actors.py's too; modules run in turn)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack on local-folder storage, parts of 5 MiB."""
    folder = tmp_path_factory.mktemp("resumable")
    env = {"PLEXZOOM_REDIS_URL": require_redis(_DB), "PLEXZOOM_UPLOAD_PART_BYTES": str(PART)}
    running = Stack(folder / "data", env, folder / "stack.log")
    yield running
    running.stop()


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
    assert sorted(p.number for p in puts) == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert len({p.upload for p in puts}) == 3
    assert {p.origin for p in puts} == {stack.url}
    # Each part carries the CRC-32 of its bytes, which the server checks.
    expected = [crc32 for f in files for crc32 in part_crc32s(f)]
    assert sorted(p.crc32 or "" for p in puts) == sorted(expected)
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
    upload_id = gate.wait_held(stack)
    ctx.set_offline(True)
    assert gate.held is not None
    gate.held.abort("internetdisconnected")
    gate.open()
    page.wait_for_timeout(3000)  # the outage itself: a few seconds without a network
    assert "completed" not in stored_or_gone(stack, upload_id)
    ctx.set_offline(False)
    wait_ready(page)
    assert sorted({p.number for p in puts}) == [1, 2, 3]
    assert [p.number for p in puts].count(2) >= 2  # the dropped part was sent again
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
    reload_mid_upload(stack, context, tmp_path, stack.url)


def test_pause_and_resume_send_only_the_missing_part(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Paused while part 3 is in flight, resumed: part 3 alone is sent again, then ready."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 3)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "paused.tif", 2400, 1800)))
    upload_id = gate.wait_held(stack)
    wait_stored(page, stack, upload_id, [1, 2])
    page.locator(".uppy-StatusBar [aria-label=Pause]").click()
    page.locator(".uppy-StatusBar [aria-label=Resume]").wait_for()
    page.wait_for_function(f"() => {STATUS}.startsWith('paused: ')")
    page.screenshot(path=artifact("resumable-paused.png"))
    assert gate.held is not None
    with contextlib.suppress(PlaywrightError):  # pausing cancelled it already
        gate.held.abort()
    gate.open()
    after = part_puts(page)
    page.locator(".uppy-StatusBar [aria-label=Resume]").click()
    wait_ready(page)
    assert [p.number for p in after] == [3]
    assert blocked == []


def test_cancel_deletes_the_upload_and_its_image(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Cancel mid-upload: the api is told (DELETE), its parts and the image go, and so does the
    gallery's card."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 3)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "dropped.tif", 2400, 1800)))
    upload_id = gate.wait_held(stack)
    wait_stored(page, stack, upload_id, [1, 2])
    card = page.get_by_test_id(f"card-{upload_id}")
    card.wait_for()
    with page.expect_request(
        lambda r: r.method == "DELETE" and r.url.endswith(f"/v1/uploads/{upload_id}")
    ):
        page.locator(".uppy-StatusBar [aria-label=Cancel]").click()
    card.wait_for(state="detached", timeout=20_000)
    assert httpx.get(f"{stack.url}/v1/uploads/{upload_id}").status_code == 404
    assert httpx.get(f"{stack.url}/v1/images/{upload_id}").status_code == 404
    assert page.get_by_test_id("upload-error").is_hidden()
    assert blocked == []


def test_a_file_that_is_no_image_says_why(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Bytes the server cannot read: completion is refused (415) and the page shows the
    server's sentence, not a retry loop."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    junk = tmp_path / "notes.tif"
    junk.write_bytes(b"not an image at all\n" * 1000)
    page.set_input_files("[data-testid=file-input]", str(junk))
    error = page.get_by_test_id("upload-error")
    error.wait_for(state="visible", timeout=30_000)
    text = error.text_content() or ""
    assert text.startswith("Could not upload notes.tif: "), text
    assert "415" not in text and len(text) > 40, text
    assert page.evaluate(STATUS) == "upload failed"
    page.screenshot(path=artifact("resumable-not-an-image.png"))
    assert blocked == []


def test_a_lost_answer_to_complete_is_no_second_upload(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The server completes the upload but its answer never reaches the page: the page finds the
    image (the upload is gone, the image is queued) and follows it; nothing is sent twice."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    completions: list[int] = []

    def lose_answer(route: Route) -> None:
        completions.append(route.fetch().status)  # the server completes it...
        route.abort("connectionreset")  # ...and the page hears nothing

    page.route(re.compile(r"/v1/uploads/[0-9a-z]+/complete$"), lose_answer)
    puts = part_puts(page)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "lost.tif", 2400, 1800)))
    wait_ready(page)
    assert completions == [202]
    assert sorted(p.number for p in puts) == [1, 2, 3]
    images = httpx.get(f"{stack.url}/v1/images", params={"limit": 50}).json()["images"]
    assert [i["filename"] for i in images].count("lost.tif") == 1
    assert page.get_by_test_id("upload-error").is_hidden()
    assert blocked == []


def test_a_small_file_kept_by_the_browser_resumes_after_a_reload_by_itself(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """A file under Golden Retriever's 10 MiB keeps its bytes in IndexedDB: after a reload the
    upload goes on without asking, with the missing part alone."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 2)
    small = tmp_path / "small.tif"
    quadrant_image(1800, 1200).tiffsave(str(small), compression="none")
    assert PART < small.stat().st_size < 10 * 1024 * 1024  # two parts; kept by the browser
    page.set_input_files("[data-testid=file-input]", str(small))
    upload_id = gate.wait_held(stack)
    wait_stored(page, stack, upload_id, [1])
    page.wait_for_function(BLOBS_KEPT)
    wait_saved(page, upload_id)
    page.reload()
    after = part_puts(page)
    wait_ready(page)
    assert [p.number for p in after] == [2]
    assert page.get_by_test_id("resume-note").is_hidden()
    assert blocked == []


def test_a_refused_part_url_is_signed_again(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The storage answers 403 to a part's PUT (its URL expired): the page asks for a new URL
    and sends the part again."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    refused: list[str] = []

    def refuse_once(route: Route) -> None:
        if route.request.method == "PUT" and part_of(route.request.url) and not refused:
            refused.append(route.request.url)
            route.fulfill(status=403, json={"detail": "This part URL has expired."})
        else:
            route.fallback()

    page.route(is_part_url, refuse_once)
    sent: list[tuple[str, str]] = []
    signed: list[int] = []  # the part numbers of each signing call, in turn

    def record(request: Request) -> None:
        sent.append((request.method, request.url))
        if request.method == "POST" and urlsplit(request.url).path.endswith("/parts"):
            signed.extend(p["number"] for p in json.loads(request.post_data or "{}")["parts"])

    page.on("request", record)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "resign.tif", 2400, 1800)))
    wait_ready(page)
    assert len(refused) == 1
    number = (part_of(refused[0]) or ("", 0))[1]
    assert sorted(signed) == sorted([1, 2, 3, number])  # each part once, the refused one again
    urls = [u for m, u in sent if m == "PUT" and (part_of(u) or ("", 0))[1] == number]
    # Signed anew (within the same second the server's signature is the same URL).
    assert len(urls) == 2 and urls[0] == refused[0]
    assert blocked == []


def test_refused_connections_while_online_are_retried(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """The browser still thinks it is online, yet part 2's first two PUTs find no server: Uppy
    retries with backoff and the upload ends ready."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    failed: list[int] = []

    def fail_twice(route: Route) -> None:
        found = part_of(route.request.url) if route.request.method == "PUT" else None
        if found and found[1] == 2 and len(failed) < 2:
            failed.append(found[1])
            route.abort("connectionrefused")
        else:
            route.fallback()

    page.route(is_part_url, fail_twice)
    puts = part_puts(page)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "flaky.tif", 2400, 1800)))
    wait_ready(page)
    assert failed == [2, 2]
    assert [p.number for p in puts].count(2) == 3
    assert page.get_by_test_id("upload-error").is_hidden()
    assert blocked == []


def test_a_file_removed_after_a_reload_leaves_nothing_on_the_server(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Reloaded mid-upload, the file is not chosen again but removed from the list: its upload
    is aborted (its parts and its image go) rather than left to expire."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    gate = PartGate(page, 3)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "left.tif", 2400, 1800)))
    upload_id = gate.wait_held(stack)
    wait_stored(page, stack, upload_id, [1, 2])
    wait_saved(page, upload_id)
    page.reload()
    page.get_by_test_id("resume-note").wait_for(state="visible", timeout=20_000)
    with page.expect_request(
        lambda r: r.method == "DELETE" and r.url.endswith(f"/v1/uploads/{upload_id}")
    ):
        page.locator(".uppy-Dashboard-Item-action--remove").click()
    page.get_by_test_id("resume-note").wait_for(state="hidden")
    deadline = time.monotonic() + 10
    while httpx.get(f"{stack.url}/v1/images/{upload_id}").status_code != 404:
        assert time.monotonic() < deadline, "the image of the removed upload is still there"
        page.wait_for_timeout(100)
    assert httpx.get(f"{stack.url}/v1/uploads/{upload_id}").status_code == 404
    assert blocked == []


def test_a_part_changed_on_the_way_is_refused_and_sent_again(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Part 2's bytes are changed on the way once: its x-amz-checksum-crc32 no longer matches,
    the server refuses it (400, nothing stored), and Uppy sends it again."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)
    answers: list[int] = []

    def corrupt_once(route: Route) -> None:
        found = part_of(route.request.url) if route.request.method == "PUT" else None
        if found and found[1] == 2 and not answers:
            body = bytearray(route.request.post_data_buffer or b"")
            body[1000] ^= 0xFF
            answers.append(route.fetch(post_data=bytes(body)).status)
            route.abort("connectionreset")  # the page sees a failed PUT (as if cut off)
        else:
            route.fallback()

    page.route(is_part_url, corrupt_once)
    puts = part_puts(page)
    source = tiff(tmp_path, "bent.tif", 2400, 1800)
    page.set_input_files("[data-testid=file-input]", str(source))
    wait_ready(page)
    assert answers == [400]
    twos = [p for p in puts if p.number == 2]
    assert len(twos) == 2 and twos[0].crc32 == twos[1].crc32 == part_crc32s(source)[1]
    assert page.get_by_test_id("upload-error").is_hidden()
    assert blocked == []


def test_a_part_refused_for_good_shows_the_reason(
    stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Every PUT of part 1 is refused with 404: no endless retry, and the page shows the answer's
    own sentence, not Uppy's "Non 2xx"."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(stack.url)

    def refuse(route: Route) -> None:
        found = part_of(route.request.url) if route.request.method == "PUT" else None
        if found and found[1] == 1:
            route.fulfill(status=404, json={"detail": "This upload is not open (any more)."})
        else:
            route.fallback()

    page.route(is_part_url, refuse)
    page.set_input_files("[data-testid=file-input]", str(tiff(tmp_path, "shut.tif", 2400, 1800)))
    error = page.get_by_test_id("upload-error")
    error.wait_for(state="visible", timeout=30_000)
    assert error.text_content() == "Could not upload shut.tif: This upload is not open (any more)."
    assert blocked == []
