"""The manifest: the one record of an image, stored as images/{id}/manifest.json.

Status moves uploading -> queued -> processing -> ready | failed. Pyramids named in a manifest
with status ``ready`` are the committed ones; the manifest is written last (the commit point).
"""

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from plexzoom.core import keys
from plexzoom.core.channel_stats import ChannelStats
from plexzoom.core.errors import DamagedRecord, NotFound, WriteConflict
from plexzoom.core.render import RenderSettings
from plexzoom.core.storage import Storage

Status = Literal["uploading", "queued", "processing", "ready", "failed"]


class Window(BaseModel):
    """A display window in native units."""

    min: float
    max: float


class Channel(BaseModel):
    """One channel: its name and colour, and for multi-channel images its statistics,
    default window, 8-bit code table (``lut[code]`` = native value) and display pyramid."""

    index: int
    name: str
    color: str
    dtype: str | None = None
    wavelength_nm: float | None = None
    stats: ChannelStats | None = None
    window: Window | None = None
    lut: list[float] | None = None
    pyramid: str | None = None


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


class Source(BaseModel):
    """The stored object an image was taken from (the inbox); None for uploads."""

    bucket: str | None  # None: the local folder, ``key`` relative to its inbox
    key: str
    etag: str
    version_id: str | None = None
    size: int


class ResumableUpload(BaseModel):
    """An upload sent in parts (POST /v1/uploads) that is not complete yet."""

    upload_id: str  # the storage backend's multipart upload
    owner: str  # plexzoom.core.access.key_owner of the API key that started it ("" when open)
    size: int  # declared, in bytes: every part but the last has ``part_size``
    part_size: int
    # "crc32": every part is signed with its CRC-32 and completed naming it (S3 checks them)
    checksum: Literal["crc32"] | None = None
    # The file name as the client gave it: kept hidden until the completed bytes tell whether
    # the file is a slide (plexzoom.core.privacy).
    name: str | None = None


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
    # The name of an upload that may be a slide (a TIFF whose first page lies past the bytes
    # the upload is judged by): never shown; it becomes ``filename`` when the conversion finds
    # no slide, and is dropped otherwise (plexzoom.core.privacy).
    filename_pending: str | None = None
    # Where the original came from when it was not uploaded (metadata, like ``filename``).
    source: Source | None = None
    # Upload option: the MATLAB/HDF5 variable that holds the image (default: the largest array).
    variable: str | None = None
    # While a resumable upload is open: its parts' layout and owner (never shown).
    upload: ResumableUpload | None = None
    format: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    channels: list[Channel] = Field(default_factory=list)
    dtype: str | None = None
    # (x, y, unit) of one pixel, when the file says (for the scale bar).
    physical_size: tuple[float, float, str] | None = None
    # Choices made while reading (e.g. the Z plane shown), for the record.
    notes: dict[str, Any] = Field(default_factory=dict)
    # Saved default render settings (PUT /v1/images/{id}/render); None: the conversion's.
    render: RenderSettings | None = None
    # Public: tiles open without a token and cacheable by anyone (PUT /v1/images/{id}/public).
    public: bool = False
    generation: str
    pyramids: dict[str, Pyramid] = Field(default_factory=dict)
    attempts: int = 0
    # The job that converts the image holds a lease it renews while it runs; a reconciler
    # re-queues the image when the lease runs out (plexzoom.core.jobs).
    lease_holder: str | None = None
    lease_until: datetime | None = None


Change = Callable[[Manifest], Manifest | None]
UPDATE_TRIES = 20


def read_manifest(storage: Storage, image_id: str) -> Manifest:
    """Load an image's manifest; NotFound when the image does not exist."""
    try:
        return _parse(storage.get_bytes(keys.manifest_key(image_id)))
    except NotFound as exc:
        raise NotFound("No image has this id.") from exc


def read_manifest_tagged(storage: Storage, image_id: str) -> tuple[Manifest, str]:
    """Load an image's manifest and the entity tag a conditional write must name."""
    try:
        raw, etag = storage.get_tagged(keys.manifest_key(image_id))
    except NotFound as exc:
        raise NotFound("No image has this id.") from exc
    return _parse(raw), etag


def _parse(raw: bytes) -> Manifest:
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as exc:
        raise DamagedRecord(
            "The record of this image is damaged or from a newer plexzoom; delete the image "
            "and upload it again."
        ) from exc


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Store the manifest atomically, whatever is stored (tests and repairs only)."""
    storage.put_bytes(keys.manifest_key(manifest.id), _body(manifest), "application/json")


def create_manifest(storage: Storage, manifest: Manifest) -> str:
    """Store the first manifest of a new image; WriteConflict if one exists."""
    return storage.put_if_match(keys.manifest_key(manifest.id), _body(manifest), None, _JSON)


def update_manifest(storage: Storage, image_id: str, change: Change) -> Manifest:
    """Read-modify-write the manifest, again from the top whenever another writer won.

    ``change`` edits the manifest it is given and returns it, returns None to write nothing,
    or raises to stop. NotFound when the image is gone (a delete always wins).
    """
    for _ in range(UPDATE_TRIES):
        manifest, etag = read_manifest_tagged(storage, image_id)
        changed = change(manifest)
        if changed is None:
            return manifest
        body = _body(changed)
        try:
            storage.put_if_match(keys.manifest_key(image_id), body, etag, _JSON)
            return changed
        except WriteConflict:
            # A retried PUT whose first try landed sees its own write as a conflict.
            with contextlib.suppress(NotFound):
                if storage.get_bytes(keys.manifest_key(image_id)) == body:
                    return changed
    raise WriteConflict()


_JSON = "application/json"


def _body(manifest: Manifest) -> bytes:
    manifest.updated = datetime.now(UTC)
    return manifest.model_dump_json(indent=1).encode()
