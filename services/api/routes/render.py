"""/v1/images/{id}/render: saved default render settings; /snapshot: a view as a PNG figure;
/thumbnail: the whole image, small; /slide-images: a slide's label and macro, when kept."""

from typing import Annotated
from urllib.parse import urlencode

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Response

from plexzoom.api.deps import StorageDep
from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.core import keys
from plexzoom.core.errors import Conflict, NotFound
from plexzoom.core.images import render_defaults, save_render
from plexzoom.core.manifest import read_manifest
from plexzoom.core.render import RenderSettings, settings_from_query
from plexzoom.core.snapshot import Region, snapshot

router = APIRouter(
    prefix="/v1/images",
    tags=["render"],
    dependencies=[Depends(require_key)],
    responses=KEY_RESPONSES,
)


@router.get("/{image_id}/render", response_model=RenderSettings)
def get_render(image_id: str, storage: StorageDep) -> RenderSettings:
    """Per channel: visible, colour, min/max (native units) and gamma that the image opens with."""
    return render_defaults(read_manifest(storage, image_id))


@router.put("/{image_id}/render", response_model=RenderSettings)
async def put_render(
    image_id: str, settings: RenderSettings, storage: StorageDep
) -> RenderSettings:
    """Save render settings as the image's defaults (list every channel once)."""
    return await to_thread.run_sync(save_render, storage, image_id, settings)


@router.get(
    "/{image_id}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The snapshot as PNG."}},
)
def get_snapshot(
    image_id: str,
    storage: StorageDep,
    x: Annotated[int, Query(ge=0)],
    y: Annotated[int, Query(ge=0)],
    w: Annotated[int, Query(ge=1)],
    h: Annotated[int, Query(ge=1)],
    width: Annotated[int, Query(ge=1)],
    c: Annotated[str | None, Query(max_length=8192)] = None,
    scalebar: bool = True,
    legend: bool = True,
) -> Response:
    """The region `x`, `y`, `w`, `h` (full-resolution pixels) as a PNG `width` pixels wide,
    mixed with render settings `c` (as for `render.dzi`; default: the saved ones), with the
    scale bar (when the pixel size is known) and the channel legend burned in."""
    manifest = read_manifest(storage, image_id)
    settings = None
    if "c0" in manifest.pyramids:
        query = urlencode({"c": c}) if c is not None else ""
        settings = settings_from_query(query, render_defaults(manifest))
    png = snapshot(storage, manifest, Region(x, y, w, h), width, settings, scalebar, legend)
    headers = {
        "content-disposition": f'attachment; filename="plexzoom-{manifest.id}.png"',
        "cache-control": "private, no-store",
    }
    return Response(png, media_type="image/png", headers=headers)


@router.get(
    "/{image_id}/thumbnail",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The thumbnail as PNG."}},
)
def get_thumbnail(
    image_id: str, storage: StorageDep, size: Annotated[int, Query(ge=16, le=2048)] = 256
) -> Response:
    """The whole image as a PNG whose longer side is `size` pixels, rendered from its pyramid
    with the saved render settings (a slide's own thumbnail page is never used: it is
    stored with the label and macro only when labels are shown)."""
    manifest = read_manifest(storage, image_id)
    if manifest.width is None or manifest.height is None or not manifest.pyramids:
        raise Conflict("The image has no pyramid yet; ask again when its status is ready.")
    longer = max(manifest.width, manifest.height)
    width = max(1, round(size * manifest.width / longer))
    settings = render_defaults(manifest) if "c0" in manifest.pyramids else None
    region = Region(0, 0, manifest.width, manifest.height)
    png = snapshot(storage, manifest, region, width, settings, scale_bar=False, legend=False)
    return Response(png, media_type="image/png", headers={"cache-control": "private, no-store"})


@router.get(
    "/{image_id}/slide-images/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The image as PNG."}},
)
def get_slide_image(image_id: str, name: str, storage: StorageDep) -> Response:
    """A whole-slide scan's label, macro or thumbnail image, as the scanner made it: kept only
    when the slide was converted with `PLEXZOOM_SHOW_SLIDE_LABELS=true` (listed in the notes'
    `slide_images`); otherwise 404."""
    manifest = read_manifest(storage, image_id)
    if name not in manifest.notes.get("slide_images", []):
        raise NotFound(
            "This image has no such slide image: labels and macros are kept only when the "
            "server converts slides with PLEXZOOM_SHOW_SLIDE_LABELS=true."
        )
    png = storage.get_bytes(keys.slide_image_key(manifest.id, manifest.generation, name))
    return Response(png, media_type="image/png", headers={"cache-control": "private, no-store"})
