"""Live pages, in a real browser: an open gallery shows images made elsewhere (the API, the inbox)
as they convert and drops deleted ones, from the event stream and without polling; a page without
the stream says so and polls."""

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Request

from tests.conftest import quadrant_bytes
from tests.servers import Stack, require_redis
from tests.viewer.test_browser import wait_drawn

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DB = 5  # Redis database of this module's stack (modules run one after another)
# local_stack's environment, plus an inbox scanned every half second (README, "Storage-triggered
# processing": the default scans every 30 s and waits 5 s for a file to settle).
SCANNING = {"PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0.5", "PLEXZOOM_INBOX_SETTLE_S": "0"}
POLLING = re.compile(r"/v1/images(\?|/[0-9a-z]{26}$)")  # the list, or one image's status


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack with local-folder storage, Redis (so events) and a quickly scanned inbox."""
    folder = tmp_path_factory.mktemp("events")
    env = {"PLEXZOOM_REDIS_URL": require_redis(_DB), **SCANNING}
    running = Stack(folder / "data", env, folder / "log")
    yield running
    running.stop()


def upload(stack: Stack, name: str) -> str:
    """POST a small PNG from outside the page; its id."""
    files = {"file": (name, quadrant_bytes("png", 640, 480))}
    answer = httpx.post(f"{stack.url}/v1/images", files=files, timeout=30)
    answer.raise_for_status()
    image_id: str = answer.json()["id"]
    return image_id


def open_gallery(ctx: BrowserContext, url: str) -> tuple[Page, list[Request]]:
    """The gallery, once its stream is live and its first page listed; the API requests it
    makes from then on."""
    page = ctx.new_page()
    with page.expect_response(lambda r: "/v1/images?" in r.url):
        page.goto(url)
    page.wait_for_selector("[data-testid=live-status][data-state=live]", timeout=20_000)
    time.sleep(0.3)  # the listing's answer has been applied
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if "/v1/" in r.url else None)
    return page, requests


def wait_thumbnail(page: Page, card: str) -> None:
    """Wait until the card shows its image's thumbnail, loaded."""
    page.wait_for_function(
        f"() => {{ const img = document.querySelector('{card} img.thumb');"
        " return img && img.complete && img.naturalWidth > 0; }",
        timeout=60_000,
    )


def test_the_open_gallery_follows_images_made_elsewhere_without_polling(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """Created through the API: the card appears, follows the conversion, shows its thumbnail;
    deleted through the API: it vanishes. The page asks for nothing on a timer meanwhile."""
    ctx, blocked = context
    old = upload(stack, "old.png")
    stack.wait_status(old)
    page, requests = open_gallery(ctx, stack.url)
    assert page.locator(f"[data-testid=card-{old}]").count() == 1
    assert page.text_content("[data-testid=live-status]") == "Live updates"

    stack.hold.arm(0.5)  # the conversion waits half way, so the page must follow it live
    new = upload(stack, "made-elsewhere.png")
    page.wait_for_selector(f"[data-testid=card-{new}]", timeout=20_000)
    stack.hold.wait_held(0.5)
    page.wait_for_function(
        f"() => document.querySelector('[data-testid=card-{new}] progress')?.value >= 0.5",
        timeout=20_000,
    )
    time.sleep(3)  # longer than the old refresh of pending cards (1 s): nothing may be polled
    stack.hold.disarm()
    wait_thumbnail(page, f"[data-testid=card-{new}]")
    assert "ready" in page.text_content(f"[data-testid=status-{new}]")

    assert httpx.delete(f"{stack.url}/v1/images/{old}").status_code == 204
    page.wait_for_selector(f"[data-testid=card-{old}]", state="detached", timeout=20_000)

    polled = [r.url for r in requests if r.method == "GET" and POLLING.search(r.url)]
    # One status read of the new image, after its `ready` event, for its links and thumbnail.
    assert polled == [f"{stack.url}/v1/images/{new}"], polled
    assert blocked == []


def test_a_file_copied_into_the_inbox_appears_converted(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """The inbox scanner makes the image; the open gallery shows it, ready, without a reload."""
    page, requests = open_gallery(context[0], stack.url)
    inbox = stack.data_dir / "inbox" / "lab-3"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "from-the-inbox.png").write_bytes(quadrant_bytes("png", 500, 400))
    card = page.locator("[data-testid^=card-]", has_text="from-the-inbox.png")
    card.wait_for(timeout=60_000)
    card_id = card.get_attribute("data-id")
    wait_thumbnail(page, f"[data-testid=card-{card_id}]")
    assert not [r.url for r in requests if r.method == "GET" and "/v1/images?" in r.url]


def test_without_the_stream_the_page_says_so_and_polls(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """/v1/events refused (as without Redis): the update line says the page polls, and an image
    made elsewhere still appears and gets ready."""
    ctx, _ = context
    page = ctx.new_page()
    page.route(
        "**/v1/events*",
        lambda r: r.fulfill(status=503, body='{"detail":"Events need Redis"}',
                            content_type="application/json"),
    )  # fmt: skip
    page.goto(stack.url)
    status = page.wait_for_selector("[data-testid=live-status][data-state=polling]")
    assert "every few seconds" in (status.text_content() or "")
    new = upload(stack, "seen-by-polling.png")
    page.wait_for_selector(f"[data-testid=card-{new}]", timeout=20_000)
    wait_thumbnail(page, f"[data-testid=card-{new}]")


def test_the_viewer_opens_an_image_when_its_conversion_ends(
    stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """A viewer opened mid-conversion follows it through the stream and opens the image once
    ready, reading the image's status only to open it."""
    stack.hold.arm(0.5)
    new = upload(stack, "opened-early.png")
    stack.hold.wait_held(0.5)
    page = context[0].new_page()
    requests: list[Request] = []
    page.on("request", lambda r: requests.append(r) if "/v1/" in r.url else None)
    page.goto(f"{stack.url}/view.html?id={new}")
    page.wait_for_function("() => document.body.dataset.updates === 'live'", timeout=20_000)
    assert page.is_visible("#view-progress-panel")
    assert page.text_content("[data-testid=view-updates]") == "Live updates"
    time.sleep(2)
    stack.hold.disarm()
    wait_drawn(page)
    polled = [r.url for r in requests if r.method == "GET" and POLLING.search(r.url)]
    assert polled == [f"{stack.url}/v1/images/{new}"] * 2, polled  # on opening, and when ready
