"""/v1/images: upload, status, listing, deletion, re-conversion."""

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from plexzoom.api.deps import EnqueueDep, SettingsDep, StorageDep
from plexzoom.api.schemas import ImagePage, ImageStatus, LinkContext, to_status
from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.api.upload import receive_upload
from plexzoom.core.access import AccessPolicy
from plexzoom.core.images import delete_image, list_images, reconvert_image, set_public
from plexzoom.core.manifest import read_manifest
from plexzoom.core.metrics import UPLOADS_IN_FLIGHT
from plexzoom.core.pixels import PixelLookup

router = APIRouter(
    prefix="/v1/images",
    tags=["images"],
    dependencies=[Depends(require_key)],
    responses=KEY_RESPONSES,
)

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


class ChannelValue(BaseModel):
    """One channel's native value at a pixel."""

    index: int
    name: str
    value: float


class PixelValues(BaseModel):
    """GET /v1/images/{id}/values: exact values read from the original."""

    x: int
    y: int
    values: list[ChannelValue]


class Visibility(BaseModel):
    """PUT /v1/images/{id}/public."""

    public: bool


def link_context(request: Request, settings: SettingsDep) -> LinkContext:
    access: AccessPolicy = request.app.state.access
    presign = settings.presign_expires_s if settings.tile_mode == "presigned" else None
    if presign and not access.is_open:
        presign = min(presign, settings.token_ttl_s)  # a presigned URL is a token too
    return LinkContext(
        base_url=str(request.base_url),
        tiles_url=settings.tiles_url,
        presign_expires_s=presign,
        signer=access.signer,
    )


@router.post("", status_code=202, response_model=ImageStatus, openapi_extra=_UPLOAD_BODY)
async def upload_image(
    request: Request,
    storage: StorageDep,
    enqueue: EnqueueDep,
    settings: SettingsDep,
    variable: Annotated[str | None, Query(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")] = None,
) -> ImageStatus:
    """Upload an image (multipart field `file`); its conversion starts at once.

    `variable` names the MATLAB/HDF5 variable that holds the image (default: the largest array).
    """
    with UPLOADS_IN_FLIGHT.track_inprogress():
        manifest = await receive_upload(
            request,
            storage,
            enqueue,
            settings.max_upload_bytes,
            variable,
            settings.show_slide_labels,
        )
    return to_status(manifest, link_context(request, settings), storage)


@router.get("", response_model=ImagePage)
def get_images(
    request: Request,
    storage: StorageDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ImagePage:
    """List images, newest first; pass `next_cursor` back as `cursor` for the next page."""
    page = list_images(storage, limit, cursor)
    ctx = link_context(request, settings)
    return ImagePage(
        images=[to_status(m, ctx, storage) for m in page.images], next_cursor=page.next_cursor
    )


@router.get("/{image_id}", response_model=ImageStatus)
def get_image(
    image_id: str, request: Request, storage: StorageDep, settings: SettingsDep
) -> ImageStatus:
    """Status, progress, size and channels of one image."""
    return to_status(read_manifest(storage, image_id), link_context(request, settings), storage)


@router.delete("/{image_id}", status_code=204)
async def remove_image(image_id: str, request: Request, storage: StorageDep) -> Response:
    """Delete an image: original, pyramids and record."""
    await to_thread.run_sync(delete_image, storage, image_id)
    request.app.state.forget_image(image_id)
    return Response(status_code=204)


@router.post("/{image_id}/reconvert", status_code=202, response_model=ImageStatus)
def reconvert(
    image_id: str,
    request: Request,
    storage: StorageDep,
    enqueue: EnqueueDep,
    settings: SettingsDep,
) -> ImageStatus:
    """Convert the original again into a new pyramid generation (new tile URLs)."""
    manifest = reconvert_image(storage, image_id, enqueue)
    return to_status(manifest, link_context(request, settings), storage)


@router.get("/{image_id}/values", response_model=PixelValues)
def get_values(
    image_id: str,
    request: Request,
    storage: StorageDep,
    x: Annotated[int, Query(ge=0, le=10_000_000)],
    y: Annotated[int, Query(ge=0, le=10_000_000)],
    c: Annotated[list[int] | None, Query(max_length=256)] = None,
) -> PixelValues:
    """Native value of each channel (or of channels `c`, repeatable) at full-resolution pixel
    (`x`, `y`), read from the original: not the display tiles' 8-bit approximation."""
    manifest = read_manifest(storage, image_id)
    wanted = sorted(set(c)) if c is not None else [ch.index for ch in manifest.channels]
    pixels: PixelLookup = request.app.state.pixels
    values = pixels.values(manifest, x, y, wanted)
    names = {ch.index: ch.name for ch in manifest.channels}
    return PixelValues(
        x=x,
        y=y,
        values=[
            ChannelValue(index=i, name=names[i], value=v)
            for i, v in zip(wanted, values, strict=True)
        ],
    )


@router.put("/{image_id}/public", response_model=ImageStatus)
async def put_public(
    image_id: str,
    visibility: Visibility,
    request: Request,
    storage: StorageDep,
    settings: SettingsDep,
) -> ImageStatus:
    """Make an image public (tiles without tokens, cached by anyone) or private again."""
    manifest = await to_thread.run_sync(set_public, storage, image_id, visibility.public)
    request.app.state.forget_image(image_id)  # this process sees the change at once
    return to_status(manifest, link_context(request, settings), storage)
