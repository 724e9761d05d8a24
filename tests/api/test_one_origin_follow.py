"""make run's web processes each follow the image events: a change made through one web process
reaches the tile cache of another at once, not after the cached record's lifetime."""

import asyncio
from pathlib import Path

import httpx
import pytest
import redis

from plexzoom.api.config import ApiSettings
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.eventlog import EventingStorage, EventLog
from plexzoom.core.storage import LocalStorage
from plexzoom.web import OneOrigin, create_app
from tests.api.conftest import MULTIPART, FakeBroker, RecordingEnqueue, form_body
from tests.conftest import quadrant_bytes
from tests.servers import require_redis

pytestmark = pytest.mark.anyio


def web_process(storage: LocalStorage, url: str, tmp_path: Path) -> OneOrigin:
    """One web process's app as make run builds it (with Redis: events and their follower)."""
    settings = ApiSettings(
        data_dir=tmp_path / "data", viewer_dir=tmp_path / "no-viewer", redis_url=url
    )
    events = EventLog(redis.Redis.from_url(url))
    return create_app(settings, storage, RecordingEnqueue(), FakeBroker().ping, None, events)


async def test_a_delete_through_one_web_process_reaches_the_others_tiles(tmp_path: Path) -> None:
    url = require_redis(3)
    storage = LocalStorage(tmp_path / "data")
    first, second = web_process(storage, url, tmp_path), web_process(storage, url, tmp_path)
    assert first.follower is not None and second.follower is not None
    # Records trusted for an hour, followed or not: only an event can explain a 404 below.
    second.tiles.unfollowed_ttl_s = second.tiles.followed_ttl_s = 3600
    second.tiles.manifest_ttl_s = 3600
    first.follower.start()
    second.follower.start()
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for app in (first, second)
    ]
    try:
        body = form_body(quadrant_bytes("png"), "q.png")
        made = await clients[0].post(
            "/v1/images", content=body, headers={"content-type": MULTIPART}
        )
        image = made.json()
        events = EventLog(redis.Redis.from_url(url))
        convert_image(EventingStorage(storage, events), image["id"], ConvertOptions())
        status = (await clients[0].get(f"/v1/images/{image['id']}")).json()
        tile = status["links"]["thumbnail"].removeprefix("http://t")
        assert (await clients[1].get(tile)).status_code == 200  # cached by the second
        for _ in range(200):  # the follower reads from the newest event on: let it start
            if second.follower.following:
                break
            await asyncio.sleep(0.01)
        assert (await clients[0].delete(f"/v1/images/{image['id']}")).status_code == 204
        for _ in range(200):  # bounded: 10 s at most
            if (await clients[1].get(tile)).status_code == 404:
                break
            await asyncio.sleep(0.05)
        assert (await clients[1].get(tile)).status_code == 404
    finally:
        for client in clients:
            await client.aclose()
        await first.follower.stop()
        await second.follower.stop()


def test_without_redis_there_is_nothing_to_follow(tmp_path: Path) -> None:
    """The check above can fail: without events no follower is made (the short TTL rules)."""
    settings = ApiSettings(data_dir=tmp_path / "d", viewer_dir=tmp_path / "v")
    app = create_app(settings, LocalStorage(tmp_path / "d"), RecordingEnqueue(), FakeBroker().ping)
    assert app.follower is None
