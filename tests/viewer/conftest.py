"""Browser fixtures: Debian's chromium through Playwright; non-loopback requests blocked."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

from tests.servers import Stack, require_redis

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless chromium, per module: sync Playwright's event loop must not outlive the module,
    or async tests that run later could not start theirs. `make test` installs the browser."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: make tools (or apt-get install chromium)")
    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A fresh browser context that aborts (and records) any request leaving loopback."""
    blocked: list[str] = []
    ctx = browser.new_context(viewport={"width": 1200, "height": 800})

    def guard(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    ctx.route("**/*", guard)
    yield ctx, blocked
    ctx.close()


def artifact(name: str) -> Path:
    """Where a screenshot is kept for people to look at after the run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@contextmanager
def local_stack(factory: pytest.TempPathFactory, name: str, db: int) -> Iterator[Stack]:
    """The whole stack with local-folder storage and its own Redis database, for one module."""
    folder = factory.mktemp(name)
    running = Stack(folder / "data", {"PLEXZOOM_REDIS_URL": require_redis(db)}, folder / "log")
    try:
        yield running
    finally:
        running.stop()
