"""The tile service: standard Deep Zoom URLs served from pyramid archives by ranged reads.

    /tiles/{id}/{generation}/{name}.dzi
    /tiles/{id}/{generation}/{name}_files/{level}/{col}_{row}.{format}

A bare ASGI app (no router, no middleware): tiles are the hot path. It serves only pyramids
that the image's manifest names (committed: this generation). Pyramids are immutable per
generation, so tiles carry strong ETags; public images (and every image when no API keys are
set) are cached by anyone for a year, private ones need a tile token (``?t=``, see
plexzoom.core.access) or an API key, and are cached privately no longer than it lasts.
"""

import re
import time
from typing import Any

from anyio import to_thread

from plexzoom.core import keys
from plexzoom.core.access import AccessPolicy
from plexzoom.core.errors import NotFound, PlexzoomError, answer_for
from plexzoom.core.images import render_defaults
from plexzoom.core.manifest import Manifest, read_manifest
from plexzoom.core.pyramid import TILE_FORMATS, TileIndex
from plexzoom.core.render import channel_table, settings_from_query
from plexzoom.core.storage import LocalStorage, Storage
from plexzoom.tiles import composite, guard
from plexzoom.tiles.cache import LruCache, SingleFlight
from plexzoom.tiles.metrics import TALLY

PREFIX = "/tiles/"
_ROUTE = re.compile(
    r"^/tiles/([0-9a-z]{26})/([0-9a-z]{12})/([a-z0-9]{1,16})"
    # One URL per tile: canonical decimal integers (no sign, no leading zero, ASCII digits only;
    # int() would accept "007" and other scripts' digits too).
    r"(?:(\.dzi)|_files/(0|[1-9][0-9]?)/(0|[1-9][0-9]{0,6})_(0|[1-9][0-9]{0,6})\.([a-z]{3,4}))$"
)
MANIFEST_TTL_S = 2.0  # unfollowed: a change of the record shows within this delay
FOLLOWED_MANIFEST_TTL_S = 300.0  # while events drop changed records (plexzoom.tiles.follow)
RECHECK_S = 0.2  # a pyramid the cached manifest does not commit: re-read it if older than this
Scope = dict[str, Any]
TileKey = tuple[str, str, str, int, int, int]
ROUTE = "plexzoom.route"  # the scope key naming the route template, for request metrics
DZI_ROUTE = "/tiles/{id}/{gen}/{name}.dzi"
TILE_ROUTE = "/tiles/{id}/{gen}/{name}_files/{level}/{col}_{row}.{format}"
RENDER_DZI_ROUTE = "/tiles/{id}/{gen}/render.dzi"
RENDER_TILE_ROUTE = "/tiles/{id}/{gen}/render_files/{level}/{col}_{row}.png"


class TileService:
    """Serves DZI descriptors and tiles; caches indexes and tile bytes in memory."""

    def __init__(
        self,
        storage: Storage,
        cache_bytes: int = 256 * 1024**2,
        index_ttl_s: float = 60,
        access: AccessPolicy | None = None,
        manifest_ttl_s: float = MANIFEST_TTL_S,
        followed_manifest_ttl_s: float = FOLLOWED_MANIFEST_TTL_S,
    ) -> None:
        self.storage = storage
        self.access = access or AccessPolicy()
        self.unfollowed_ttl_s, self.followed_ttl_s = manifest_ttl_s, followed_manifest_ttl_s
        self.manifest_ttl_s = manifest_ttl_s  # the one in force: see follow()
        # Indexes are re-read after a TTL so a delete made through another process shows.
        self.index_ttl_s = index_ttl_s
        self.indexes: LruCache[tuple[str, str, str], tuple[TileIndex, float]] = LruCache(512)
        self.tiles: LruCache[TileKey, bytes] = LruCache(cache_bytes)
        self.manifests: LruCache[str, tuple[Manifest, float]] = LruCache(256)
        # Concurrent requests for one uncached tile (or manifest) share one storage read.
        self._tile_reads: SingleFlight[TileKey, bytes] = SingleFlight()
        self._manifest_reads: SingleFlight[str, Manifest] = SingleFlight()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if time.monotonic() > TALLY.due:
            TALLY.flush()
        if scope["method"] not in ("GET", "HEAD"):
            await answer(send, 405, b"Only GET and HEAD are allowed.", [(b"allow", b"GET, HEAD")])
            return
        match = _ROUTE.fullmatch(scope["path"])  # fullmatch: "$" alone lets a final "\n" through
        if match is None:
            await answer(send, 404, b"No such tile.")
            return
        image_id, gen, name, dzi, level, col, row, ext = match.groups()
        scope[ROUTE] = _route_template(name, dzi is not None)
        try:
            # Warm requests take the cached record, index and tile without awaiting.
            manifest = self._cached_manifest(image_id) or await self._manifest(image_id)
            if not guard.commits(manifest, gen, name):
                # Converted a moment ago? The cached manifest may predate the commit.
                manifest = await self._manifest(image_id, max_age_s=RECHECK_S)
            private_for = guard.admit(self.access, scope, manifest, gen, name)
            if name == composite.NAME:
                await self._render(scope, send, manifest, match.groups()[3:], private_for)
                return
            pyramid = (image_id, gen, name)
            index = self._cached_index(*pyramid) or await self._index(*pyramid)
            if dzi:
                body, ctype, etag = index.dzi_xml().encode(), b"application/xml", f'"{gen}-{name}"'
            else:
                if ext != index.format or ext not in TILE_FORMATS:
                    raise NotFound("No such tile.")
                spot = (int(level), int(col), int(row))
                body = self._cached_tile((*pyramid, *spot)) or await self._tile(
                    *pyramid, index, *spot
                )
                ctype = _CONTENT_TYPES[ext]
                etag = f'"{gen}-{name}-{level}-{col}-{row}"'
        except PlexzoomError as exc:
            await _refuse(send, exc)
            return
        await _send_tile(scope, send, body, ctype, etag.encode(), guard.cache_control(private_for))

    async def _render(
        self,
        scope: Scope,
        send: Any,
        manifest: Manifest,
        where: tuple[str | None, ...],
        private_for: int | None,
    ) -> None:
        """A server-rendered composite descriptor or tile (see plexzoom.tiles.composite)."""
        dzi, level, col, row, ext = where
        image_id, gen = manifest.id, manifest.pyramids["c0"].generation  # admitted: committed
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            settings = settings_from_query(query, render_defaults(manifest))
            index = await self._index(image_id, gen, "c0")
            tag = composite.settings_tag(settings)
            if dzi:
                body = TileIndex(**{**index.__dict__, "format": "png"}).dzi_xml().encode()
                etag = f'"{gen}-{tag}"'.encode()
                caching = guard.cache_control(private_for)
                await _send_tile(scope, send, body, b"application/xml", etag, caching)
                return
            if ext != "png":
                raise NotFound("No such tile.")
            spot = (int(level or 0), int(col or 0), int(row or 0))
            first = await self._tile(image_id, gen, "c0", index, *spot)
            pngs, tables = [], []
            for setting in settings.visible():
                name = f"c{setting.index}"
                pngs.append(
                    await self._tile(
                        image_id, gen, name, await self._index(image_id, gen, name), *spot
                    )
                )
                tables.append(channel_table(manifest.channels[setting.index].lut or [], setting))
            shape = composite.tile_shape(first)
            body = await to_thread.run_sync(composite.compose_tile, pngs, tables, shape)
        except PlexzoomError as exc:
            await _refuse(send, exc)
            return
        etag = f'"{gen}-{tag}-{level}-{col}-{row}"'.encode()
        # Without explicit settings the tile follows the saved defaults, which can change.
        caching = guard.cache_control(private_for, changeable="c=" not in query)
        await _send_tile(scope, send, body, b"image/png", etag, caching)

    def _cached_manifest(self, image_id: str, max_age_s: float | None = None) -> Manifest | None:
        """The cached manifest if younger than manifest_ttl_s (or ``max_age_s``), else None."""
        cached = self.manifests.get(image_id)
        max_age = self.manifest_ttl_s if max_age_s is None else max_age_s
        if cached is not None and time.monotonic() - cached[1] < max_age:
            return cached[0]
        return None

    async def _manifest(self, image_id: str, max_age_s: float | None = None) -> Manifest:
        """The image's manifest, re-read when older than manifest_ttl_s (or ``max_age_s``): it
        says which pyramid is committed, whether the image is public, its render defaults."""
        cached = self._cached_manifest(image_id, max_age_s)
        if cached is not None:
            return cached
        now = time.monotonic()

        async def read() -> Manifest:
            return await to_thread.run_sync(read_manifest, self.storage, image_id)

        def keep(manifest: Manifest) -> None:
            self.manifests.put(image_id, (manifest, now), 1)

        return await self._manifest_reads.run(image_id, read, keep)

    def follow(self, followed: bool) -> None:
        """Switch to the long manifest TTL while events drop changed records, back to the short
        one while they may be missed (the follower is disconnected)."""
        self.manifest_ttl_s = self.followed_ttl_s if followed else self.unfollowed_ttl_s

    def drop_manifest(self, image_id: str) -> None:
        """Forget an image's cached record (it changed): the next request reads it again."""
        self.manifests.discard(image_id)
        self._manifest_reads.forget(image_id)  # a read under way may predate the change

    def drop_manifests(self) -> None:
        """Forget every cached record (changes may have been missed)."""
        self._manifest_reads.forget_all()
        self.manifests.clear()

    def forget(self, image_id: str) -> None:
        """Drop a deleted image's cached record, indexes and tiles."""
        self.drop_manifest(image_id)
        self.indexes.discard_where(lambda k: k[0] == image_id)
        self.tiles.discard_where(lambda k: k[0] == image_id)

    def _cached_index(self, image_id: str, gen: str, name: str) -> TileIndex | None:
        """The pyramid's cached index unless it is older than index_ttl_s, else None."""
        cached = self.indexes.get((image_id, gen, name))
        return cached[0] if cached is not None and cached[1] > time.monotonic() else None

    async def _index(self, image_id: str, gen: str, name: str) -> TileIndex:
        cache_key = (image_id, gen, name)
        cached = self._cached_index(image_id, gen, name)
        if cached is not None:
            return cached
        now = time.monotonic()
        key = keys.index_key(image_id, gen, name)
        try:
            raw = await to_thread.run_sync(self.storage.get_bytes, key)
        except NotFound:
            self.forget(image_id)
            raise
        index = TileIndex.from_json(raw)
        self.indexes.put(cache_key, (index, now + self.index_ttl_s), 1)
        return index

    def _cached_tile(self, cache_key: TileKey) -> bytes | None:
        """A tile's bytes if cached (a hit), else None."""
        body = self.tiles.get(cache_key)
        if body is not None:
            TALLY.hits += 1
        return body

    async def _tile(
        self, image_id: str, gen: str, name: str, index: TileIndex, level: int, col: int, row: int
    ) -> bytes:
        cache_key = (image_id, gen, name, level, col, row)
        body = self._cached_tile(cache_key)
        if body is not None:
            return body
        where = index.tile_range(level, col, row)
        if where is None:
            raise NotFound("No such tile.")
        TALLY.misses += 1

        async def read() -> bytes:
            return await self._read(keys.pyramid_key(image_id, gen, name), *where)

        def keep(data: bytes) -> None:
            self.tiles.put(cache_key, data, len(data))

        return await self._tile_reads.run(cache_key, read, keep)

    async def _read(self, key: str, start: int, length: int) -> bytes:
        """Read a tile; only a read that would wait on a disk or the network goes to a thread."""
        if isinstance(self.storage, LocalStorage):
            cached = self.storage.get_range_cached(key, start, length)
            if cached is not None:
                return cached
        return await to_thread.run_sync(self.storage.get_range, key, start, length)


_CONTENT_TYPES = {ext: ctype.encode() for ext, ctype in TILE_FORMATS.items()}


def _route_template(name: str, dzi: bool) -> str:
    """The route template of a request, for request metrics."""
    if name == composite.NAME:
        return RENDER_DZI_ROUTE if dzi else RENDER_TILE_ROUTE
    return DZI_ROUTE if dzi else TILE_ROUTE


async def _refuse(send: Any, exc: PlexzoomError) -> None:
    """The answer to a tile request that cannot be served: the tile service's column of the
    error table (plexzoom.core.errors.HTTP_STATUS); never a traceback, never cached."""
    status = answer_for(exc).tiles
    extra = [(b"www-authenticate", b"Bearer")] if status == 401 else None
    # Every absent tile reads alike, whatever the reason (the table says why).
    text = "No such tile." if status == 404 else exc.message
    await answer(send, status, text.encode(), extra)


async def _send_tile(
    scope: Scope, send: Any, body: bytes, ctype: bytes, etag: bytes, caching: bytes = guard.PUBLIC
) -> None:
    headers = [(b"etag", etag), (b"cache-control", caching)]
    for name, value in scope["headers"]:
        if name == b"if-none-match" and etag in value:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
    headers += [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.body", "body": body})
    TALLY.bytes_served += len(body)


async def answer(
    send: Any,
    status: int,
    text: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    content_type: bytes = b"text/plain",
) -> None:
    """A short answer that is not a tile (an error, the health check, the metrics)."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(text)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": text})
