"""The event follower against a real Redis: what each event drops, resuming after a reconnect,
and dropping every cached record when it cannot tell what it missed."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from plexzoom.core.eventlog import EventLog
from plexzoom.tiles.follow import EventFollower, connect_to
from tests.servers import shared_redis

pytestmark = pytest.mark.anyio
IMAGE = "0" * 26


class Recorder:
    """Stands in for a TileService: records what the follower asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.followed: list[bool] = []

    def drop_manifest(self, image_id: str) -> None:
        self.calls.append(("drop", image_id))

    def drop_manifests(self) -> None:
        self.calls.append(("drop all",))

    def forget(self, image_id: str) -> None:
        self.calls.append(("forget", image_id))

    def follow(self, followed: bool) -> None:
        self.followed.append(followed)


@pytest.fixture
def url() -> str:
    """Redis database 3 (never flushed: each test has a stream of its own)."""
    return shared_redis(3)


@pytest.fixture
def events(url: str) -> Iterator[EventLog]:
    """An event log on a stream of the test's own, deleted afterwards."""
    log = EventLog(redis.Redis.from_url(url), stream=f"plexzoom:test-follow:{uuid.uuid4().hex}")
    yield log
    log.client.delete(log.stream)


@pytest.fixture
async def client(url: str) -> AsyncIterator["aioredis.Redis[bytes]"]:
    """An asyncio Redis client, as the follower makes them."""
    made = connect_to(url)()
    yield made
    await made.aclose()  # type: ignore[attr-defined]


def follower_of(events: EventLog, url: str) -> tuple[EventFollower, Recorder]:
    recorder = Recorder()
    return EventFollower(recorder, connect_to(url), events.stream), recorder  # type: ignore[arg-type]


async def test_events_drop_what_they_change(events: EventLog, url: str, client: Any) -> None:
    """created/image drop the record; deleted forgets the image; older events are not replayed."""
    events.publish("image", {"id": "old" + IMAGE[3:]})
    follower, recorder = follower_of(events, url)
    await follower.resume(client)
    assert recorder.calls == [("drop all",)] and recorder.followed == [True]
    assert follower.last_id == events.latest_id()  # from the newest id at start
    recorder.calls.clear()
    events.publish("created", {"id": IMAGE})
    events.publish("image", {"id": IMAGE})
    last = events.publish("deleted", {"id": IMAGE})
    while len(recorder.calls) < 3:
        await follower.read_once(client)
    assert recorder.calls == [("drop", IMAGE), ("drop", IMAGE), ("forget", IMAGE)]
    assert follower.last_id == last


async def test_reconnect_resumes_after_the_last_event(
    events: EventLog, url: str, client: Any
) -> None:
    """Events published while disconnected are read after the reconnect; nothing else dropped."""
    follower, recorder = follower_of(events, url)
    await follower.resume(client)
    recorder.calls.clear()
    events.publish("image", {"id": IMAGE})
    await follower.read_once(client)
    missed = "1" * 26
    events.publish("image", {"id": missed})  # while "disconnected"
    await follower.resume(client)
    await follower.read_once(client)
    assert recorder.calls == [("drop", IMAGE), ("drop", missed)]


async def test_trimmed_past_the_last_event_drops_everything(
    events: EventLog, url: str, client: Any
) -> None:
    """When the last event seen is gone from the stream, whatever came between is unknown."""
    follower, recorder = follower_of(events, url)
    events.publish("image", {"id": IMAGE})
    await follower.resume(client)
    events.publish("image", {"id": IMAGE})
    await follower.read_once(client)
    for _ in range(5):
        events.publish("image", {"id": "2" * 26})
    events.client.xtrim(events.stream, maxlen=2, approximate=False)  # the seen one goes
    recorder.calls.clear()
    await follower.resume(client)
    assert recorder.calls == [("drop all",)]
    assert follower.last_id == events.latest_id()


async def test_a_lost_stream_drops_everything(events: EventLog, url: str, client: Any) -> None:
    """Redis restarted empty (the stream is gone): the follower cannot tell, so it drops all."""
    follower, recorder = follower_of(events, url)
    events.publish("image", {"id": IMAGE})
    await follower.resume(client)
    events.client.delete(events.stream)
    recorder.calls.clear()
    await follower.resume(client)
    assert recorder.calls == [("drop all",)] and follower.last_id == "0-0"


async def test_run_falls_back_while_redis_is_away_and_recovers(events: EventLog, url: str) -> None:
    """Unreachable Redis: not following (short TTL), retried with backoff; then following."""
    recorder = Recorder()
    dead = connect_to("redis://127.0.0.1:1/3")  # nothing listens on port 1
    follower = EventFollower(recorder, dead, events.stream)  # type: ignore[arg-type]
    follower.start()
    try:
        await until(lambda: len(recorder.followed) >= 2)
        assert not any(recorder.followed) and not follower.following
        follower.connect = connect_to(url)
        await until(lambda: follower.following)
        events.publish("deleted", {"id": IMAGE})
        await until(lambda: ("forget", IMAGE) in recorder.calls)
    finally:
        await follower.stop()


async def until(check: Any, timeout_s: float = 10) -> None:
    """Wait on the event loop (every 20 ms, at most ``timeout_s``) until ``check()`` holds."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.02)
