"""The manifest: the one record of an image, stored as images/{id}/manifest.json.

Status moves uploading -> queued -> processing -> ready | failed. Pyramids named in a manifest
with status ``ready`` are the committed ones; the manifest is written last (the commit point).
"""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from plexzoom.core import keys
from plexzoom.core.errors import DamagedRecord, NotFound
from plexzoom.core.storage import Storage

Status = Literal["uploading", "queued", "processing", "ready", "failed"]


class Channel(BaseModel):
    """One band of the image as shown to the user."""

    index: int
    name: str
    color: str


class Pyramid(BaseModel):
    """One committed Deep Zoom pyramid: an archive plus a byte-range index of its tiles."""

    name: str
    generation: str
    width: int
    height: int
    tile_size: int
    overlap: int
    format: str
    levels: int
    size: int = 0


class Manifest(BaseModel):
    """Everything plexzoom knows about one image."""

    id: str
    status: Status
    stage: str = ""
    progress: float = 0.0
    error: str | None = None
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # Original file name: metadata only, never a key, a path or a log line.
    filename: str | None = None
    format: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    channels: list[Channel] = Field(default_factory=list)
    generation: str
    pyramids: dict[str, Pyramid] = Field(default_factory=dict)
    attempts: int = 0


def read_manifest(storage: Storage, image_id: str) -> Manifest:
    """Load an image's manifest; NotFound when the image does not exist."""
    try:
        raw = storage.get_bytes(keys.manifest_key(image_id))
    except NotFound as exc:
        raise NotFound("No image has this id.") from exc
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise DamagedRecord(
            "The record of this image is damaged or from a newer plexzoom; delete the image "
            "and upload it again."
        ) from exc


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Store the manifest atomically (one PUT or one rename)."""
    manifest.updated = datetime.now(UTC)
    body = manifest.model_dump_json(indent=1).encode()
    storage.put_bytes(keys.manifest_key(manifest.id), body, "application/json")
