"""The three services started apart, each by its own command, sharing only storage and Redis: the
viewer served by the api draws tiles served by the tile service on another origin."""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext

from tests.integration.test_pipeline import quadrant_image
from tests.servers import free_port, require_redis, start_module, wait_http
from tests.viewer.conftest import artifact
from tests.viewer.test_browser import HEIGHT, WIDTH, check_quadrants

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(api URL, tiles URL): api, tiles and worker as three commands on one data folder."""
    folder = tmp_path_factory.mktemp("apart")
    api_port, tiles_port = free_port(), free_port()
    api_url, tiles_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{tiles_port}"
    common = {"PLEXZOOM_DATA_DIR": str(folder / "data"), "PLEXZOOM_REDIS_URL": require_redis(3)}
    procs = [
        start_module(
            "plexzoom.tiles",
            {
                **common,
                "PLEXZOOM_PORT": str(tiles_port),
                "PLEXZOOM_CORS_ORIGINS": f'["{api_url}"]',
                # Records trusted for an hour: only the image events can tell of a change.
                "PLEXZOOM_TILE_FOLLOWED_MANIFEST_TTL_S": "3600",
            },
            folder / "tiles.log",
        ),
        start_module(
            "plexzoom.api",
            {**common, "PLEXZOOM_PORT": str(api_port), "PLEXZOOM_TILES_URL": tiles_url},
            folder / "api.log",
        ),
        start_module("plexzoom.worker", common, folder / "worker.log"),
    ]
    try:
        wait_http(f"{tiles_url}/healthz", procs[0], timeout_s=60)
        wait_http(f"{api_url}/healthz", procs[1], timeout_s=60)
        yield api_url, tiles_url
    finally:
        for proc in procs:
            stop_group(proc)


def test_the_viewer_on_the_api_draws_tiles_from_the_tile_service(
    apart: tuple[str, str], context: tuple[BrowserContext, list[str]], tmp_path: Path
) -> None:
    api_url, tiles_url = apart
    source = tmp_path / "quadrants.png"
    quadrant_image(WIDTH, HEIGHT).write_to_file(str(source))
    with source.open("rb") as body:
        image = httpx.post(f"{api_url}/v1/images", files={"file": ("q.png", body)}).json()
    deadline = time.monotonic() + 120
    while (status := httpx.get(image["links"]["self"]).json())["status"] not in ("ready", "failed"):
        assert time.monotonic() < deadline, "the worker never finished the conversion"
        time.sleep(0.2)
    assert status["status"] == "ready"
    assert status["links"]["dzi"].startswith(f"{tiles_url}/tiles/")

    ctx, blocked = context
    page = ctx.new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto(image["links"]["viewer"])
    assert image["links"]["viewer"].startswith(api_url)
    check_quadrants(page, "apart")
    tiles = [url for url in asked if "/tiles/" in url]
    assert tiles and all(url.startswith(f"{tiles_url}/tiles/") for url in tiles)
    page.screenshot(path=artifact("apart.png"))
    assert blocked == []

    # A delete through the api reaches the tile process through Redis: its cached tile is gone.
    tile = next(url for url in tiles if "_files/" in url)
    assert httpx.get(tile).status_code == 200
    assert httpx.delete(image["links"]["self"]).status_code == 204
    deadline = time.monotonic() + 10
    while httpx.get(tile).status_code != 404:
        assert time.monotonic() < deadline, "the tile process kept serving a deleted image"
        time.sleep(0.05)
