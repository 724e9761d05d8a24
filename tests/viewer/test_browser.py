"""The viewer in a real browser: upload through the page, check the pixels OpenSeadragon drew."""

import io
import itertools
import os
from pathlib import Path

import boto3
import httpx
import numpy as np
import pytest
import pyvips
from playwright.sync_api import BrowserContext, Page

from tests.integration.test_pipeline import QUADRANTS, quadrant_image
from tests.servers import MotoServer, Stack, free_port, require_redis
from tests.viewer.conftest import artifact

pytestmark = [pytest.mark.slow, pytest.mark.browser]
_DBS = itertools.count(10)
WIDTH, HEIGHT = 3000, 2000


def screen_pixel(page: Page, image_x: float, image_y: float, shot: bytes) -> list[float]:
    """The colour drawn at an image coordinate in the main view (not the navigator)."""
    point = page.evaluate(
        """([x, y]) => {
            const v = window.plexzoom.viewer;
            const p = v.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
            const box = v.element.getBoundingClientRect();
            const nav = v.navigator.element.getBoundingClientRect();
            const px = box.left + p.x, py = box.top + p.y;
            const inNav = px >= nav.left && px <= nav.right && py >= nav.top && py <= nav.bottom;
            return [px, py, inNav];
        }""",
        [image_x, image_y],
    )
    assert not point[2], "the probe point lies under the navigator"
    image = pyvips.Image.new_from_buffer(shot, "")
    return list(image(round(point[0]), round(point[1])))[:3]


def wait_drawn(page: Page) -> None:
    """Wait until OpenSeadragon reports the current view fully loaded and drawn."""
    page.evaluate("() => window.plexzoom.ready")
    page.wait_for_function("() => document.body.dataset.viewerReady === '1'", timeout=30_000)
    page.wait_for_timeout(300)  # let the drawer finish its last animation frame


def check_quadrants(page: Page, name: str) -> None:
    """Each quadrant's centre shows its colour at home zoom, and again zoomed far in."""
    wait_drawn(page)
    shot = page.screenshot(path=artifact(f"{name}-home.png"))
    centres = [
        (WIDTH / 4, HEIGHT / 4),
        (3 * WIDTH / 4, HEIGHT / 4),
        (WIDTH / 4, 3 * HEIGHT / 4),
        (3 * WIDTH / 4, 3 * HEIGHT / 4),
    ]
    for (x, y), colour in zip(centres, QUADRANTS, strict=True):
        assert np.allclose(screen_pixel(page, x, y, shot), colour, atol=16), (name, x, y)
    # Zoom to 4 screen px per image px around a point near the centre of the image, inside the
    # bottom-left quadrant: only full-resolution tiles can draw the quadrant edge where it is.
    page.evaluate("""() => {
        const v = window.plexzoom.viewer;
        const c = v.viewport.imageToViewportCoordinates(new OpenSeadragon.Point(1450, 1050));
        v.viewport.zoomTo(v.viewport.imageToViewportZoom(4), null, true);
        v.viewport.panTo(c, true);
    }""")
    wait_drawn(page)
    shot = page.screenshot(path=artifact(f"{name}-zoomed.png"))
    assert np.allclose(screen_pixel(page, 1450, 1050, shot), QUADRANTS[2], atol=16)
    assert np.allclose(screen_pixel(page, 1560, 1050, shot), QUADRANTS[3], atol=16)
    assert np.allclose(screen_pixel(page, 1450, 985, shot), QUADRANTS[0], atol=16)


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The stack with local-folder storage."""
    folder = tmp_path_factory.mktemp("browser-local")
    env = {"PLEXZOOM_REDIS_URL": require_redis(next(_DBS))}
    stack = Stack(folder / "data", env, folder / "stack.log")
    yield stack  # type: ignore[misc]
    stack.stop()


def test_upload_through_the_page_and_view(
    local_stack: Stack, context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """Drop a generated image on the page, follow both progress phases, open it, check pixels."""
    ctx, blocked = context
    page = ctx.new_page()
    page.goto(local_stack.url)
    source = tmp_path / "quadrants.png"
    quadrant_image(WIDTH, HEIGHT).write_to_file(str(source))
    page.set_input_files("[data-testid=file-input]", str(source))
    status = "document.querySelector('[data-testid=upload-status]').textContent.trim()"
    page.wait_for_function(f"() => {status} === 'ready'", timeout=120_000)
    page.screenshot(path=artifact("upload-ready.png"))
    with page.expect_navigation():
        page.click("[data-testid=upload-open]")
    assert "view.html?id=" in page.url
    check_quadrants(page, "proxy")
    # The URL carries the view: opening it again restores the same zoomed view.
    page.wait_for_function("() => location.hash.includes('z=')")
    shared = page.url
    other = ctx.new_page()
    other.goto(shared)
    wait_drawn(other)
    shot = other.screenshot(path=artifact("shared-url.png"))
    assert np.allclose(screen_pixel(other, 1450, 1050, shot), QUADRANTS[2], atol=16)
    # The gallery lists it with a thumbnail.
    page.goto(local_stack.url)
    page.wait_for_selector("[data-testid=gallery] img", timeout=20_000)
    page.screenshot(path=artifact("gallery.png"))
    assert blocked == []


def test_failed_image_shows_its_error(
    local_stack: Stack, context: tuple[BrowserContext, list[str]]
) -> None:
    """A corrupt upload ends failed and the viewer page shows the reason."""
    data = quadrant_image(800, 600).tiffsave_buffer(tile=True, compression="deflate")
    created = httpx.post(
        f"{local_stack.url}/v1/images",
        files={"file": ("cut.tif", io.BytesIO(data[: len(data) // 3]))},
    ).json()
    local_stack.wait_status(created["id"])
    page = context[0].new_page()
    page.goto(created["links"]["viewer"])
    error = page.wait_for_selector("[data-testid=view-error]:not([hidden])", timeout=20_000)
    assert "truncated or damaged" in error.text_content()
    page.screenshot(path=artifact("failed.png"))


def test_presigned_mode_reads_tiles_straight_from_s3(
    context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    """In presigned mode no tile request reaches plexzoom; the bucket's CORS rules are explicit."""
    moto = MotoServer()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env = creds | {
        "PLEXZOOM_REDIS_URL": require_redis(next(_DBS)),
        "PLEXZOOM_TILE_MODE": "presigned",
        "PLEXZOOM_S3_ENDPOINT_URL": moto.endpoint,
        "PLEXZOOM_S3_BUCKET": f"presigned-{os.getpid()}",
        "PLEXZOOM_S3_CORS_ORIGINS": f'["{origin}"]',
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log", port=port)
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        rules = s3.get_bucket_cors(Bucket=env["PLEXZOOM_S3_BUCKET"])["CORSRules"]
        assert rules[0]["AllowedOrigins"] == [origin]
        assert "Range" in rules[0]["AllowedHeaders"]
        data = quadrant_image(WIDTH, HEIGHT).write_to_buffer(".png")
        created = httpx.post(
            f"{stack.url}/v1/images", files={"file": ("q.png", io.BytesIO(data))}
        ).json()
        stack.wait_status(created["id"])
        ctx, blocked = context
        requests: list[tuple[str, str | None]] = []
        ctx.on("request", lambda r: requests.append((r.url, r.headers.get("range"))))
        page = ctx.new_page()
        page.goto(created["links"]["viewer"])
        check_quadrants(page, "presigned")
        assert page.evaluate("() => window.plexzoom.mode") == "range"
        ours = [u for u, _ in requests if u.startswith(stack.url)]
        assert not [u for u in ours if "/tiles/" in u], ours
        ranged = [u for u, r in requests if u.startswith(moto.endpoint) and r]
        assert len(ranged) >= 8, requests
        assert blocked == []
    finally:
        stack.stop()
        moto.stop()
