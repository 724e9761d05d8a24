"""Job state in the manifest: a lease taken, renewed and given up with conditional writes.

A conversion holds the image's lease (``lease_holder`` and ``lease_until``) while it runs and
renews it with every progress write. A second delivery of the same message finds the lease
live and does nothing; when the holder dies the lease runs out and the reconciler queues the
image again. Every write checks the holder and the generation it read, so a job that lost its
lease, or whose image was deleted or re-queued, writes nothing more.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from plexzoom.core.errors import LeaseLost, NotFound
from plexzoom.core.job_metrics import counting_renewal
from plexzoom.core.manifest import Change, Manifest, update_manifest
from plexzoom.core.storage import Storage

GAVE_UP = "The conversion failed {attempts} times; upload the file again or ask for help."


@dataclass(frozen=True)
class Lease:
    """Who holds an image's job, for which generation, and for how long each renewal lasts."""

    image_id: str
    generation: str
    holder: str
    seconds: float


def new_holder() -> str:
    """A name for one run of a job (unique across processes and machines)."""
    return uuid.uuid4().hex


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def lease_expired(manifest: Manifest, at: datetime | None = None) -> bool:
    """True when nobody holds the image's job (no lease, or one that ran out)."""
    return manifest.lease_until is None or manifest.lease_until <= (at or now())


def claim(
    storage: Storage, image_id: str, holder: str, seconds: float, max_attempts: int
) -> tuple[Manifest, Lease | None]:
    """Take the lease of a queued or stalled job and count the attempt; None: nothing to do."""

    def take(manifest: Manifest) -> Manifest | None:
        if manifest.status not in ("queued", "processing") or not lease_expired(manifest):
            return None  # finished, failed, still uploading, or another run holds it
        if manifest.attempts >= max_attempts:
            return _failed(manifest, GAVE_UP.format(attempts=manifest.attempts))
        manifest.status, manifest.stage, manifest.progress = "processing", "starting", 0.0
        manifest.error, manifest.attempts = None, manifest.attempts + 1
        manifest.lease_holder, manifest.lease_until = holder, now() + timedelta(seconds=seconds)
        return manifest

    manifest = update_manifest(storage, image_id, take)
    if manifest.status == "processing" and manifest.lease_holder == holder:
        return manifest, Lease(image_id, manifest.generation, holder, seconds)
    return manifest, None


def renew(storage: Storage, lease: Lease, stage: str, progress: float) -> Manifest:
    """Publish progress and extend the lease; LeaseLost when the job is no longer ours."""

    def extend(manifest: Manifest) -> Manifest:
        _check(manifest, lease)
        manifest.stage, manifest.progress = stage, max(manifest.progress, round(progress, 4))
        manifest.lease_until = now() + timedelta(seconds=lease.seconds)
        return manifest

    with counting_renewal():
        return _update_held(storage, lease, extend)


def commit(storage: Storage, lease: Lease, built: Manifest) -> Manifest:
    """The commit point: name the new pyramids in a ``ready`` manifest, if the job is ours."""

    def finish(manifest: Manifest) -> Manifest:
        _check(manifest, lease)
        manifest.status, manifest.stage, manifest.progress = "ready", "done", 1.0
        manifest.error = None
        manifest.width, manifest.height, manifest.dtype = built.width, built.height, built.dtype
        manifest.channels, manifest.pyramids = built.channels, built.pyramids
        manifest.physical_size, manifest.notes = built.physical_size, built.notes
        if built.notes.get("filename_withheld"):  # a slide: its name may name the patient
            manifest.filename = None
        elif manifest.filename_pending is not None:  # no slide after all: the name is shown
            manifest.filename = manifest.filename_pending
        manifest.filename_pending = None
        manifest.lease_holder = manifest.lease_until = None
        return manifest

    return _update_held(storage, lease, finish)


def fail(storage: Storage, lease: Lease, reason: str) -> Manifest:
    """Record a permanent failure with its reason (the original is kept)."""

    def record(manifest: Manifest) -> Manifest:
        _check(manifest, lease)
        return _failed(manifest, reason)

    return _update_held(storage, lease, record)


def release(storage: Storage, lease: Lease) -> Manifest:
    """Give the job back after a transient error, so a retry or the reconciler can take it."""

    def give_back(manifest: Manifest) -> Manifest:
        _check(manifest, lease)
        manifest.status, manifest.stage = "queued", "queued"
        manifest.lease_holder = manifest.lease_until = None
        return manifest

    return _update_held(storage, lease, give_back)


def _update_held(storage: Storage, lease: Lease, change: Change) -> Manifest:
    """update_manifest for the lease holder; a deleted image is a lost lease too."""
    try:
        return update_manifest(storage, lease.image_id, change)
    except NotFound as exc:
        raise LeaseLost("The image was deleted during its conversion.") from exc


def _check(manifest: Manifest, lease: Lease) -> None:
    if (
        manifest.status != "processing"
        or manifest.lease_holder != lease.holder
        or manifest.generation != lease.generation
    ):
        raise LeaseLost("Another run holds this conversion, or the image changed.")


def _failed(manifest: Manifest, reason: str) -> Manifest:
    manifest.status, manifest.error = "failed", reason
    manifest.filename_pending = None  # whether it was a slide is unknown: the name is dropped
    manifest.lease_holder = manifest.lease_until = None
    return manifest
