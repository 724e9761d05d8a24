"""Keeps a tile process's cached image records right across processes and hosts.

Every write of an image's record appends an event to the Redis stream ``plexzoom:events``
(plexzoom.core.eventlog). The follower reads that stream with XREAD BLOCK on the event loop (the
caches are single-threaded) and drops what an event makes stale: a ``deleted`` image's record,
indexes and tiles; the record of a ``created`` or changed (``image``) one, so a public/private
switch, saved render defaults or a new committed generation shows at once.

While it follows, the service keeps records for the long TTL; while it is disconnected, the
short one (changes made meanwhile show within it). After a reconnect it resumes after the last
event it saw; when that event is gone from the stream (trimmed, or Redis lost its data) it
cannot tell what it missed and drops every cached record.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from plexzoom.core.eventlog import STREAM, Event, parse_event, text
from plexzoom.tiles.app import TileService
from plexzoom.tiles.metrics import MANIFEST_DROPS

log = logging.getLogger(__name__)
BLOCK_MS = 2000  # an idle XREAD returns this often; a silent network loss shows within ~5 s
MIN_BACKOFF_S, MAX_BACKOFF_S = 0.1, 5.0
Connect = Callable[[], "aioredis.Redis[bytes]"]


def connect_to(url: str) -> Connect:
    """A factory of Redis clients for the follower (one per connection attempt)."""
    timeout = BLOCK_MS / 1000 + 3
    return lambda: aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=3)


class EventFollower:
    """Reads image events from Redis and drops the TileService's stale cache entries."""

    def __init__(self, service: TileService, connect: Connect, stream: str = STREAM) -> None:
        self.service, self.connect, self.stream = service, connect, stream
        self.last_id: str | None = None  # the last event applied; None: none yet
        self.following = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Follow in the background (call from the event loop)."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name="event-follower")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run(self) -> None:
        """Follow until cancelled, reconnecting with a bounded backoff."""
        backoff = MIN_BACKOFF_S
        while True:
            client = self.connect()
            try:
                await self.resume(client)
                backoff = MIN_BACKOFF_S
                while True:
                    await self.read_once(client)
            except (RedisError, OSError) as exc:
                if self.following:
                    log.warning("image events: lost Redis (%s); reconnecting", exc)
                self._set_following(False)
            finally:
                await client.aclose()  # type: ignore[attr-defined]  # stubs predate it
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def resume(self, client: "aioredis.Redis[bytes]") -> None:
        """Start following after the last event seen, or, when that cannot be done safely,
        from the newest event with every cached record dropped."""
        if self.last_id is None or not await client.xrange(self.stream, self.last_id, self.last_id):
            # The newest id before the drop: a record read after the drop is at least as new
            # as any event up to that id; later events are read by XREAD.
            newest = await client.xrevrange(self.stream, count=1)
            self.service.drop_manifests()
            MANIFEST_DROPS.inc()
            self.last_id = text(newest[0][0]) if newest else "0-0"
        self._set_following(True)

    async def read_once(self, client: "aioredis.Redis[bytes]") -> int:
        """Wait for events (up to BLOCK_MS) and apply them; how many there were."""
        assert self.last_id is not None
        answer: Any = await client.xread({self.stream: self.last_id}, count=500, block=BLOCK_MS)
        applied = 0
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                try:
                    self.apply(parse_event(entry_id, fields))
                except ValueError:  # not an event we can read: it may have changed anything
                    self.service.drop_manifests()
                    MANIFEST_DROPS.inc()
                self.last_id = text(entry_id)
                applied += 1
        return applied

    def apply(self, event: Event) -> None:
        """Drop what one event makes stale."""
        image_id = event.data.get("id")
        if not isinstance(image_id, str):
            return
        if event.kind == "deleted":
            self.service.forget(image_id)
        else:
            self.service.drop_manifest(image_id)
        MANIFEST_DROPS.inc()

    def _set_following(self, following: bool) -> None:
        if following and not self.following:
            log.info("image events: following %s after %s", self.stream, self.last_id)
        self.following = following
        self.service.follow(following)
