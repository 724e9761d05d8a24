"""The tile process: the tile service alone, with /healthz and /metrics.

Run with ``python -m plexzoom.tiles``, or uvicorn --factory
plexzoom.tiles.main:create_app_from_env.
With PLEXZOOM_REDIS_URL set, each process follows the image events so that its cached records
follow deletes, privacy switches, saved render defaults and new generations at once
(plexzoom.tiles.follow); without it, within PLEXZOOM_TILE_MANIFEST_TTL_S.
"""

import asyncio
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from redis.exceptions import RedisError

from plexzoom.core import metrics
from plexzoom.core.access import AccessPolicy
from plexzoom.core.accesslog import log_requests_to_stderr
from plexzoom.core.errors import PlexzoomError
from plexzoom.core.libvips import restrict_loaders
from plexzoom.core.logs import configure_logging
from plexzoom.core.storage import Storage
from plexzoom.middleware import wrap_app
from plexzoom.settings import build_access, build_storage
from plexzoom.tiles import guard
from plexzoom.tiles.app import PREFIX, ROUTE, TileService, answer
from plexzoom.tiles.config import TileSettings
from plexzoom.tiles.follow import EventFollower, connect_to
from plexzoom.tiles.metrics import FLUSH_EVERY_S, TALLY
from plexzoom.tiles.observe import Observed, light_records_suffice

log = logging.getLogger(__name__)
Scope = dict[str, Any]
ASGIApp = Any


class TileApp:
    """Tiles under /tiles/, GET /healthz, GET /metrics; starts and stops the event follower."""

    def __init__(
        self,
        tiles: TileService,
        follower: EventFollower | None = None,
        redis: "aioredis.Redis[bytes] | None" = None,
    ) -> None:
        self.tiles, self.follower, self.redis = tiles, follower, redis

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith(PREFIX):
                await self.tiles(scope, receive, send)
            elif path == "/healthz":
                scope[ROUTE] = path
                await self.healthz(send)
            elif path == "/metrics":
                scope[ROUTE] = path
                await self.metrics(scope, send)
            else:
                await answer(send, 404, b"Not found.")
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)

    async def healthz(self, send: Any) -> None:
        """200 when storage (and Redis, when configured) answer, else 503."""
        checks = {"storage": "ok"}
        try:
            await to_thread.run_sync(self.tiles.storage.ping)
        except PlexzoomError as exc:
            checks["storage"] = exc.message
        if self.redis is not None:
            try:
                await self.redis.ping()
                checks["redis"] = "ok"
            except (RedisError, OSError) as exc:
                checks["redis"] = f"Redis does not answer: {exc}"
        healthy = all(v == "ok" for v in checks.values())
        if self.follower is not None:
            checks["events"] = "following" if self.follower.following else "reconnecting"
        body = json.dumps({"status": "ok" if healthy else "unhealthy", **checks}).encode()
        await answer(send, 200 if healthy else 503, body, content_type=b"application/json")

    async def metrics(self, scope: Scope, send: Any) -> None:
        """Every process's metrics; with API keys set, only for a request that carries one."""
        access: AccessPolicy = self.tiles.access
        if not access.is_open and not access.knows_key(guard.header(scope, b"authorization")):
            extra = [(b"www-authenticate", b"Bearer")]
            text = b"/metrics needs an API key: send 'Authorization: Bearer <key>'."
            await answer(send, 401, text, extra)
            return
        TALLY.flush()  # this process's figures at once; the others' within FLUSH_EVERY_S
        body, content_type = await to_thread.run_sync(metrics.exposition)
        await answer(send, 200, body, content_type=content_type.encode())

    async def lifespan(self, receive: Any, send: Any) -> None:
        """Start the follower and the tally's flushes with the process; stop them at its end."""
        flushes = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.follower is not None:
                    self.follower.start()
                flushes = asyncio.get_running_loop().create_task(_flush_tally())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if flushes is not None:
                    flushes.cancel()
                if self.follower is not None:
                    await self.follower.stop()
                if self.redis is not None:
                    await self.redis.aclose()  # type: ignore[attr-defined]
                TALLY.flush()
                metrics.process_exited()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: TileSettings, storage: Storage) -> ASGIApp:
    """The tile process's ASGI app: TileApp behind the access log, CORS and request metrics."""
    tiles = TileService(
        storage,
        settings.tile_cache_bytes,
        access=build_access(settings),
        manifest_ttl_s=settings.tile_manifest_ttl_s,
        followed_manifest_ttl_s=settings.tile_followed_manifest_ttl_s,
    )
    follower, client = None, None
    if settings.redis_url:
        follower = EventFollower(tiles, connect_to(settings.redis_url), settings.events_stream)
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2)
    else:
        log.warning(
            "no PLEXZOOM_REDIS_URL: image changes reach the tile caches within %g s "
            "(PLEXZOOM_TILE_MANIFEST_TTL_S), not at once",
            settings.tile_manifest_ttl_s,
        )
    # Access lines are written by Observed (fast) unless a handler needs full log records.
    fast_lines = settings.access_log and light_records_suffice()
    slow_lines = settings.access_log and not fast_lines
    app = wrap_app(
        TileApp(tiles, follower, client), settings.model_copy(update={"access_log": slow_lines})
    )
    return Observed(app, access_lines=fast_lines)


def create_app_from_env() -> ASGIApp:
    """Build the tile process from PLEXZOOM_* settings (the uvicorn factory)."""
    restrict_loaders()  # server renders decode channel tiles to mix them
    settings = TileSettings()
    configure_logging(settings.log_format)
    if settings.access_log:
        log_requests_to_stderr()
    return create_app(settings, build_storage(settings, agent="plexzoom-tiles"))


async def _flush_tally() -> None:
    """Flush the tally while requests are few (requests flush it when it is due)."""
    while True:
        await asyncio.sleep(FLUSH_EVERY_S)
        if time.monotonic() > TALLY.due:
            TALLY.flush()
