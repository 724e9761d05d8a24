"""One origin for the embedded default (``make run``): the api, the tile service and the
viewer behind one port, in each web process.

    /tiles/...   the bare tile service (the hot path: no router, no middleware but the log)
    /metrics     every process's figures, the worker's too (one metrics folder under make run)
    the rest     the api

The api tells the tile service of its own process of a change at once (``forget_image``); the
other web processes, and every change a worker commits, reach each tile service through the
image events in Redis, which each web process follows (plexzoom.tiles.follow).
"""

from typing import Any

from fastapi import FastAPI

from plexzoom.api.config import ApiSettings
from plexzoom.api.main import ApiCollaborators, api_parts_from_env, create_api
from plexzoom.core.metrics import RequestMetrics, fastapi_route
from plexzoom.core.storage import Storage
from plexzoom.middleware import wrap_app
from plexzoom.tiles.app import PREFIX as TILES_PREFIX
from plexzoom.tiles.app import TileService
from plexzoom.tiles.follow import EventFollower, connect_to


class OneOrigin:
    """Sends /tiles/ straight to the bare tile service and everything else to FastAPI,
    behind the access log and, when origins are configured, CORS."""

    def __init__(
        self,
        api: FastAPI,
        tiles: TileService,
        settings: ApiSettings,
        follower: EventFollower | None = None,
    ) -> None:
        self.api, self.tiles, self.follower = api, tiles, follower
        self.handle = wrap_app(self.route, settings)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and self.follower is not None:
            follower = self.follower

            async def receive_and_follow() -> dict[str, Any]:
                """The api's lifespan, with the follower started and stopped beside it."""
                message: dict[str, Any] = await receive()
                if message["type"] == "lifespan.startup":
                    follower.start()
                elif message["type"] == "lifespan.shutdown":
                    await follower.stop()
                return message

            await self.handle(scope, receive_and_follow, send)
            return
        await self.handle(scope, receive, send)

    async def route(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Dispatch one request by its path."""
        if scope["type"] == "http" and scope["path"].startswith(TILES_PREFIX):
            await self.tiles(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(settings: ApiSettings, storage: Storage, *collaborators: Any) -> OneOrigin:
    """API, tiles and viewer behind one ASGI callable (tiles read ``storage`` as it is);
    ``collaborators``: create_api's enqueue, broker probe, inbox hint, event log, queue depth."""
    api = create_api(settings, storage, *collaborators)
    tiles = TileService(storage, settings.tile_cache_bytes, access=api.state.access)
    api.state.forget_image = tiles.forget
    follower = None
    if settings.redis_url and api.state.events is not None:
        follower = EventFollower(tiles, connect_to(settings.redis_url))
    return OneOrigin(api, tiles, settings, follower)


def _route(scope: dict[str, Any]) -> str:
    """The route template of a request: the tile service's own, or FastAPI's."""
    if scope["path"].startswith(TILES_PREFIX):
        return "/tiles/*"
    return fastapi_route(scope)


def create_app_from_env() -> RequestMetrics:
    """The one origin from PLEXZOOM_* settings (the uvicorn factory of make run)."""
    settings, storage, collaborators = api_parts_from_env()
    parts: ApiCollaborators = collaborators
    return RequestMetrics(create_app(settings, storage, *parts), "web", _route)
