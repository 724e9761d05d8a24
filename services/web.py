"""One origin for the embedded default (``make run``): the api, the tile service and the
viewer behind one port, in each web process.

    /tiles/...   the bare tile service (the hot path: no router, no middleware but the log)
    /metrics     every process's figures, the worker's too (one metrics folder under make run)
    the rest     the api

Here the api tells the tile service of its own changes at once (``forget_image``); tile
processes elsewhere learn of every change from the image events in Redis.
"""

from typing import Any

from fastapi import FastAPI

from plexzoom.api.config import ApiSettings
from plexzoom.api.main import ApiCollaborators, api_parts_from_env, create_api
from plexzoom.api.security import wrap_app
from plexzoom.core.metrics import RequestMetrics, fastapi_route
from plexzoom.core.storage import Storage
from plexzoom.tiles.app import PREFIX as TILES_PREFIX
from plexzoom.tiles.app import TileService


class OneOrigin:
    """Sends /tiles/ straight to the bare tile service and everything else to FastAPI,
    behind the access log and, when origins are configured, CORS."""

    def __init__(self, api: FastAPI, tiles: TileService, settings: ApiSettings) -> None:
        self.api, self.tiles = api, tiles
        self.handle = wrap_app(self.route, settings)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
    return OneOrigin(api, tiles, settings)


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
