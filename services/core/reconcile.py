"""The reconciler: finds work the queue lost and storage nobody names, from the manifests alone.

Redis may lose a message (a crash, a restart without persistence, a flush) and a worker may die
mid-job. The manifests still say ``queued`` or ``processing``, so a periodic pass can queue
them again: a ``processing`` image whose lease ran out, a ``queued`` one nobody touched for a
grace period. The re-queue is a conditional write, so of several reconcilers one enqueues.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from plexzoom.core import keys
from plexzoom.core.errors import DamagedRecord, NotFound
from plexzoom.core.ids import is_image_id
from plexzoom.core.inbox import complete_claim, read_claim, source_digest
from plexzoom.core.jobs import lease_expired, now
from plexzoom.core.manifest import Manifest, Source, read_manifest, update_manifest
from plexzoom.core.storage import Storage

log = logging.getLogger(__name__)
PAGE = 500
# Defaults (the worker's settings name these): a queued image untouched this long lost its
# message; an uploading one untouched this long lost its web process (uploads touch it every
# minute while bytes arrive).
QUEUED_GRACE_S = 120.0
UPLOAD_STALE_S = 600.0
# A resumable upload (POST /v1/uploads) untouched this long is aborted; every call on it
# touches it (plexzoom.core.uploads).
RESUMABLE_UPLOAD_TTL_S = 7 * 24 * 3600.0


@dataclass
class Reconciled:
    """What one pass did (for the log and the tests)."""

    requeued: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # storage prefixes
    aborted: list[str] = field(default_factory=list)  # keys of multipart uploads


def reconcile(
    storage: Storage,
    enqueue: Callable[[str], None],
    queued_grace_s: float = QUEUED_GRACE_S,
    upload_stale_s: float = UPLOAD_STALE_S,
    resumable_ttl_s: float = RESUMABLE_UPLOAD_TTL_S,
) -> Reconciled:
    """One pass over every image: re-queue stalled jobs, remove what no manifest names and
    uploads that stopped (a streaming upload touches its manifest every minute, a resumable
    one each time its client calls), then abort multipart uploads no record names."""
    done, after = Reconciled(), ""
    stale = Stale(upload_stale_s, resumable_ttl_s)
    while True:
        ids = storage.list_children(keys.IMAGES, after, PAGE)
        for image_id in ids:
            if is_image_id(image_id):
                _reconcile_image(storage, image_id, enqueue, queued_grace_s, stale, done)
        if len(ids) < PAGE:
            break
        after = ids[-1]
    abort_stranded_uploads(storage, upload_stale_s, done)
    return done


@dataclass(frozen=True)
class Stale:
    """How long an upload may go untouched: one streamed through a web process, one in parts."""

    streamed_s: float
    resumable_s: float


def _reconcile_image(
    storage: Storage,
    image_id: str,
    enqueue: Callable[[str], None],
    queued_grace_s: float,
    stale: Stale,
    done: Reconciled,
) -> None:
    # List first, then read: a manifest is always written before the pyramids it will name,
    # so a generation listed here and not named by the manifest read next is garbage.
    pyramids = storage.list_keys(keys.image_prefix(image_id) + "pyramids/")
    try:
        manifest = read_manifest(storage, image_id)
    except NotFound:  # a delete that was cut short, or a job that wrote on after it
        if storage.list_keys(keys.image_prefix(image_id)):  # SeaweedFS lists emptied folders
            storage.delete_prefix(keys.image_prefix(image_id))
            done.removed.append(keys.image_prefix(image_id))
        return
    except DamagedRecord:
        log.warning("image %s has a damaged manifest; left as it is", image_id)
        return
    waited = now() - manifest.updated
    if manifest.status == "uploading" and manifest.source is not None:
        if waited > timedelta(seconds=queued_grace_s):  # its taker died before queueing it
            _complete_inbox_claim(storage, manifest.id, manifest.source, enqueue, done)
        return
    if manifest.status == "uploading" and manifest.upload is not None:
        if waited > timedelta(seconds=stale.resumable_s):  # its client gave up
            storage.abort_multipart(keys.original_key(image_id), manifest.upload.upload_id)
            storage.delete_prefix(keys.image_prefix(image_id))
            done.aborted.append(keys.original_key(image_id))
            done.removed.append(keys.image_prefix(image_id))
        return
    if manifest.status == "uploading" and waited > timedelta(seconds=stale.streamed_s):
        storage.delete_prefix(keys.image_prefix(image_id))  # its web process died mid-upload
        done.removed.append(keys.image_prefix(image_id))
        return
    _remove_unnamed_generations(storage, manifest, pyramids, done)
    if _stalled(manifest, now(), queued_grace_s) and _requeue(storage, image_id, queued_grace_s):
        enqueue(image_id)
        done.requeued.append(image_id)


def _complete_inbox_claim(
    storage: Storage,
    image_id: str,
    source: Source,
    enqueue: Callable[[str], None],
    done: Reconciled,
) -> None:
    """Queue an image taken from the inbox whose taker stopped before queueing it."""
    claim = read_claim(storage, source_digest(source))
    if claim is None or claim.image_id != image_id:
        log.warning("image %s came from the inbox but has no claim; left as it is", image_id)
        return
    completed = complete_claim(storage, claim, enqueue)
    if completed is not None and completed.status == "queued":
        done.requeued.append(image_id)


def _stalled(manifest: Manifest, at: datetime, queued_grace_s: float) -> bool:
    """A job nobody runs: processing without a live lease, or queued and untouched too long."""
    if manifest.status == "processing":
        return lease_expired(manifest, at)
    if manifest.status == "queued":
        waited = at - manifest.updated > timedelta(seconds=queued_grace_s)
        return lease_expired(manifest, at) and waited
    return False


def _requeue(storage: Storage, image_id: str, queued_grace_s: float) -> bool:
    """Mark the image queued again (touching it restarts the grace period); False if it moved."""
    marked = False

    def mark(manifest: Manifest) -> Manifest | None:
        nonlocal marked
        marked = _stalled(manifest, now(), queued_grace_s)
        if not marked:
            return None
        manifest.status, manifest.stage = "queued", "queued"
        manifest.lease_holder = manifest.lease_until = None
        return manifest

    try:
        update_manifest(storage, image_id, mark)
    except NotFound:
        return False
    return marked


def _remove_unnamed_generations(
    storage: Storage, manifest: Manifest, listed: list[str], done: Reconciled
) -> None:
    named = {manifest.generation} | {p.generation for p in manifest.pyramids.values()}
    for generation in {key.split("/")[3] for key in listed} - named:
        prefix = keys.generation_prefix(manifest.id, generation)
        storage.delete_prefix(prefix)
        done.removed.append(prefix)


def abort_stranded_uploads(storage: Storage, grace_s: float, done: Reconciled) -> None:
    """Abort the multipart uploads of originals that no record names as open (an api that died
    between starting one and writing the record, a record deleted since): their parts would
    cost storage until a lifecycle rule, if any, removed them. Uploads younger than ``grace_s``
    are left to the request that started them; streamed uploads to their record's own rule."""
    for upload in storage.list_multipart_uploads(keys.IMAGES):
        image_id = upload.key.removeprefix(keys.IMAGES).removesuffix("/original")
        if not is_image_id(image_id) or upload.key != keys.original_key(image_id):
            continue
        if now() - upload.initiated < timedelta(seconds=grace_s):
            continue
        try:
            manifest: Manifest | None = read_manifest(storage, image_id)
        except NotFound:
            manifest = None
        except DamagedRecord:
            continue
        if manifest is not None and manifest.status == "uploading":
            named = manifest.upload.upload_id if manifest.upload is not None else None
            if named in (None, upload.upload_id):
                continue
        storage.abort_multipart(upload.key, upload.upload_id)
        done.aborted.append(upload.key)
