"""GET /v1/formats: the upload formats, so that pages and scripts need not keep their own list."""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from plexzoom.api.security import KEY_RESPONSES, require_key
from plexzoom.core.formats import SUPPORTED

router = APIRouter(
    prefix="/v1/formats",
    tags=["formats"],
    dependencies=[Depends(require_key)],
    responses=KEY_RESPONSES,
)


class FormatInfo(BaseModel):
    """One upload format. Files are recognised by their first bytes, never by their names."""

    name: str
    media_type: str
    label: str
    extensions: list[str]


class FormatList(BaseModel):
    """GET /v1/formats."""

    formats: list[FormatInfo]


@router.get("", response_model=FormatList)
def list_formats() -> FormatList:
    """Every format an upload may have."""
    return FormatList(
        formats=[
            FormatInfo(
                name=f.name, media_type=f.media_type, label=f.label, extensions=list(f.extensions)
            )
            for f in SUPPORTED
        ]
    )
