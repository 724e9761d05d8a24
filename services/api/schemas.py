"""Response bodies of the HTTP API."""

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from plexzoom.core import keys
from plexzoom.core.access import TokenSigner
from plexzoom.core.manifest import Channel, Manifest, Source, Status
from plexzoom.core.storage import Storage


class PyramidLinks(BaseModel):
    """Presigned URLs of a pyramid archive and its tile index (presigned tile mode)."""

    archive: str
    index: str


class Links(BaseModel):
    """Where to find the image and its pyramid."""

    self: str
    dzi: str
    viewer: str
    thumbnail: str | None = None
    pca: str | None = None  # hyperspectral cubes: the first three principal components as RGB
    pyramid: PyramidLinks | None = None
    # Private images (when API keys are set): the tile token in every tile URL above (t=...)
    # and the seconds it has left; fetch the status again before it runs out.
    token: str | None = None
    token_expires_in: int | None = None


class ChannelStatus(Channel):
    """A channel with the URL of its 8-bit display pyramid."""

    dzi: str | None = None


class ImageStatus(BaseModel):
    """GET /v1/images/{id}."""

    id: str
    status: Status
    stage: str
    progress: float
    error: str | None
    filename: str | None
    # The stored object the image was taken from (the inbox); null for uploads.
    source: Source | None
    format: str | None
    size: int | None
    width: int | None
    height: int | None
    channels: list[ChannelStatus]
    public: bool
    dtype: str | None
    physical_size: tuple[float, float, str] | None
    notes: dict[str, Any]
    attempts: int  # conversion attempts so far (a crash or a lost worker counts one)
    created: datetime
    updated: datetime
    links: Links


class ImagePage(BaseModel):
    """GET /v1/images: newest first."""

    images: list[ImageStatus]
    next_cursor: str | None


class LinkContext(BaseModel):
    """What link building needs to know about the request and deployment."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    base_url: str
    tiles_url: str | None = None  # the tile service's own origin, when it has one
    presign_expires_s: int | None = None
    signer: TokenSigner | None = None  # set when private images need tile tokens


def to_status(manifest: Manifest, ctx: LinkContext, storage: Storage) -> ImageStatus:
    """The API view of a manifest."""
    links = _links(manifest, ctx, storage)
    base = links.dzi.rsplit("/", 1)[0]
    query = f"?t={links.token}" if links.token else ""
    channels = [
        ChannelStatus(**c.model_dump(), dzi=f"{base}/{c.pyramid}.dzi{query}" if c.pyramid else None)
        for c in manifest.channels
    ]
    status = ImageStatus(
        **manifest.model_dump(include=set(ImageStatus.model_fields) - {"links", "channels"}),
        channels=channels,
        links=links,
    )
    if manifest.filename is None:  # withheld (a slide): the inbox key would name it too
        status.source = None
    return status


def _links(manifest: Manifest, ctx: LinkContext, storage: Storage) -> Links:
    base = ctx.base_url.rstrip("/")
    pyramid = manifest.pyramids.get("image")
    gen = pyramid.generation if pyramid else manifest.generation
    tiles = f"{(ctx.tiles_url or base).rstrip('/')}/tiles/{manifest.id}/{gen}/image"
    query = ""
    links = Links(
        self=f"{base}/v1/images/{manifest.id}",
        dzi="",
        viewer=f"{base}/view.html?id={manifest.id}",
    )
    if ctx.signer is not None and not manifest.public:
        token = ctx.signer.issue(manifest.id, gen)
        links.token, links.token_expires_in = token.value, token.seconds_left()
        query = f"?t={token.value}"
    links.dzi = f"{tiles}.dzi{query}"
    if pyramid is None or manifest.status != "ready":
        return links
    # The smallest level that still fills one tile: a ready-made thumbnail.
    level = max(
        0,
        pyramid.levels
        - 1
        - math.ceil(math.log2(max(1.0, max(pyramid.width, pyramid.height) / pyramid.tile_size))),
    )
    links.thumbnail = f"{tiles}_files/{level}/0_0.{pyramid.format}{query}"
    if "pca" in manifest.pyramids:
        links.pca = f"{tiles.rsplit('/', 1)[0]}/pca.dzi{query}"
    if ctx.presign_expires_s:
        archive = storage.presign_get(
            keys.pyramid_key(manifest.id, gen, "image"), ctx.presign_expires_s
        )
        index = storage.presign_get(
            keys.index_key(manifest.id, gen, "image"), ctx.presign_expires_s
        )
        if archive and index:
            links.pyramid = PyramidLinks(archive=archive, index=index)
    return links
