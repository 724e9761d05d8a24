"""Image records: the one entry function every way in uses, listing, deletion, re-conversion."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from plexzoom.core import keys
from plexzoom.core.errors import BadRenderSettings, Conflict, DamagedRecord, NotFound
from plexzoom.core.formats import Format
from plexzoom.core.ids import is_image_id, new_generation, new_image_id
from plexzoom.core.manifest import (
    Manifest,
    ResumableUpload,
    Source,
    create_manifest,
    read_manifest,
    update_manifest,
)
from plexzoom.core.render import ChannelRender, RenderSettings
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)
Enqueue = Callable[[str], None]


def start_image(
    storage: Storage,
    filename: str | None,
    variable: str | None = None,
    source: Source | None = None,
    image_id: str | None = None,
    filename_pending: str | None = None,
    upload: ResumableUpload | None = None,
) -> Manifest:
    """Create the record of an image whose original is about to be written (``upload``: the
    multipart upload a client sends it in, plexzoom.core.uploads).

    WriteConflict when ``image_id`` (chosen by the caller, as an inbox claim does) exists.
    """
    manifest = Manifest(
        id=image_id or new_image_id(),
        status="uploading",
        stage="uploading",
        generation=new_generation(),
        filename=filename,
        filename_pending=filename_pending,
        variable=variable,
        source=source,
        upload=upload,
    )
    create_manifest(storage, manifest)
    return manifest


def submit_image(
    storage: Storage,
    manifest: Manifest,
    fmt: Format,
    size: int,
    enqueue: Enqueue,
    names: tuple[str | None, str | None] | None = None,
) -> Manifest:
    """Mark the original as stored and enqueue its conversion (the entry point of every source).

    ``names``: the (shown, pending) file names, when they are only known now (a resumable
    upload's first bytes are read after its parts are joined). Only an image still
    ``uploading`` moves on (two completers of one inbox claim queue it once).
    """
    moved = False

    def queue(stored: Manifest) -> Manifest | None:
        nonlocal moved
        moved = stored.status == "uploading"
        if not moved:
            return None
        stored.status, stored.stage, stored.progress = "queued", "queued", 0.0
        stored.format, stored.size, stored.upload = fmt.name, size, None
        if names is not None:
            stored.filename, stored.filename_pending = names
        return stored

    queued = update_manifest(storage, manifest.id, queue)
    if moved:
        enqueue(queued.id)
    return queued


def refuse_image(storage: Storage, image_id: str, reason: str) -> Manifest:
    """End an image ``failed`` before any conversion (a file that is no supported image); its
    original stays, so nothing is lost."""

    def refuse(stored: Manifest) -> Manifest | None:
        if stored.status != "uploading":
            return None
        stored.status, stored.stage, stored.error = "failed", "failed", reason
        return stored

    return update_manifest(storage, image_id, refuse)


def touch_upload(storage: Storage, image_id: str) -> None:
    """Note that an upload is still streaming (its manifest's ``updated``), so the reconciler
    does not take it for one whose web process died."""

    def touch(manifest: Manifest) -> Manifest | None:
        return manifest if manifest.status == "uploading" else None

    update_manifest(storage, image_id, touch)


def discard_image(storage: Storage, image_id: str) -> None:
    """Remove everything stored for an image (a failed or abandoned upload, or a delete)."""
    storage.delete_prefix(keys.image_prefix(image_id))


def delete_image(storage: Storage, image_id: str) -> None:
    """Delete an image: original, pyramids, manifest. NotFound when it does not exist.

    The manifest goes first: from then on every conditional write of a running job fails, so
    the image cannot come back, and the job removes what it wrote after the delete.
    """
    read_manifest(storage, image_id)
    storage.delete(keys.manifest_key(image_id))
    discard_image(storage, image_id)


def reconvert_image(storage: Storage, image_id: str, enqueue: Enqueue) -> Manifest:
    """Convert an image again into a new pyramid generation."""

    def requeue(manifest: Manifest) -> Manifest:
        if manifest.status in ("uploading", "queued", "processing"):
            raise Conflict(
                "This image is still being uploaded or converted; try again when it is done."
            )
        manifest.generation = new_generation()
        manifest.status, manifest.stage, manifest.progress = "queued", "queued", 0.0
        manifest.error, manifest.attempts = None, 0
        return manifest

    manifest = update_manifest(storage, image_id, requeue)
    enqueue(manifest.id)
    return manifest


@dataclass
class Page:
    """One page of a newest-first listing."""

    images: list[Manifest]
    next_cursor: str | None


def list_images(storage: Storage, limit: int, cursor: str | None = None) -> Page:
    """List images newest first: one listing call plus one read per image on the page."""
    after = cursor if cursor and is_image_id(cursor) else ""
    ids = storage.list_children(keys.IMAGES, after, limit + 1)
    images = []
    for image_id in ids[:limit]:
        if not is_image_id(image_id):
            continue
        try:
            images.append(read_manifest(storage, image_id))
        except NotFound:
            continue  # deleted between the listing and the read
        except DamagedRecord:
            log.warning("image %s has a damaged manifest; left out of the listing", image_id)
    next_cursor = ids[limit - 1] if len(ids) > limit else None
    return Page(images=images, next_cursor=next_cursor)


def render_defaults(manifest: Manifest) -> RenderSettings:
    """The image's default render settings: saved ones, else each channel's default window.

    They belong to the committed conversion, so they stay readable while the image is converted
    again (its channels and pyramids change only when the new conversion commits).
    """
    if "c0" not in manifest.pyramids or not manifest.channels or manifest.channels[0].lut is None:
        converted = manifest.pyramids or manifest.status == "ready"
        raise Conflict(
            "Only converted multi-channel images have render settings; this one is "
            f"{'an RGB image' if converted else manifest.status}."
        )
    if manifest.render is not None:
        return manifest.render
    return RenderSettings(
        channels=[
            ChannelRender(index=c.index, color=c.color, min=c.window.min, max=c.window.max)
            for c in manifest.channels
            if c.window is not None
        ]
    )


def save_render(storage: Storage, image_id: str, settings: RenderSettings) -> RenderSettings:
    """Save render settings as the image's defaults; every channel must be listed once."""

    def save(manifest: Manifest) -> Manifest:
        current = render_defaults(manifest)
        wanted = sorted(c.index for c in settings.channels)
        if wanted != sorted(c.index for c in current.channels):
            raise BadRenderSettings(
                f"List each of the image's {len(current.channels)} channels once "
                f"(indexes 0..{len(current.channels) - 1})."
            )
        manifest.render = settings
        return manifest

    update_manifest(storage, image_id, save)
    return settings


def set_public(storage: Storage, image_id: str, public: bool) -> Manifest:
    """Make an image's tiles public (no token, shared caches) or private again."""

    def change(manifest: Manifest) -> Manifest | None:
        if manifest.status in ("uploading", "queued", "processing"):
            # The job commits the manifest it built, which would undo the change.
            raise Conflict(
                "This image is still being uploaded or converted; try again when it is done."
            )
        if manifest.public == public:
            return None
        manifest.public = public
        return manifest

    return update_manifest(storage, image_id, change)
