"""/v1/images/{id}/render: the image's saved default render settings."""

from anyio import to_thread
from fastapi import APIRouter, Depends

from plexzoom.api.deps import StorageDep
from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.core.images import render_defaults, save_render
from plexzoom.core.manifest import read_manifest
from plexzoom.core.render import RenderSettings

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
