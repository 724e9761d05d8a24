"""The tile process's settings: every web service's (storage, keys, token secret, cache size,
CORS, access log) and how long it keeps image records."""

from pydantic import Field

from plexzoom.core.eventlog import STREAM
from plexzoom.settings import WebSettings
from plexzoom.tiles.app import FOLLOWED_MANIFEST_TTL_S, MANIFEST_TTL_S


class TileSettings(WebSettings):
    """PLEXZOOM_* variables read by the tile service."""

    # Seconds a cached image record is trusted without events (no Redis, or Redis unreachable)...
    tile_manifest_ttl_s: float = Field(MANIFEST_TTL_S, gt=0)
    # ... and while image events from Redis drop changed records at once.
    tile_followed_manifest_ttl_s: float = Field(FOLLOWED_MANIFEST_TTL_S, gt=0)
    # The Redis stream of image events (plexzoom.core.eventlog): the api's and worker's.
    events_stream: str = STREAM
