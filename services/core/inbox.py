"""The inbox: objects that land under a prefix of plexzoom's own store become images, once each.

An object version is identified by (bucket, key, ETag). A scan claims each new one
with a conditional create of ``claims/taken/{digest}.json`` naming the image it becomes; the
claim lives in storage, so duplicate events, several scanners, restarts and a flushed Redis
still make one image. Then the image's record is created, the object moved to its original
(conditional on the claimed ETag) and the conversion queued through ``submit_image``, as an
upload is. A claim whose image is not queued after a grace period is completed by the next scan
(object still in the inbox) or by the reconciler (object already moved). plexzoom writes only
under ``images/`` and ``claims/``, so its own writes never land in the inbox.
"""

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ValidationError

from plexzoom.core import keys
from plexzoom.core.errors import NotFound, UnsupportedFormat, WriteConflict
from plexzoom.core.formats import SNIFF_BYTES, sniff_format
from plexzoom.core.ids import new_image_id
from plexzoom.core.images import delete_image, refuse_image, start_image, submit_image
from plexzoom.core.manifest import Manifest, Source, read_manifest, update_manifest
from plexzoom.core.privacy import shown_filename
from plexzoom.core.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)
WITHHELD = "(withheld)"  # a slide's inbox key, once it has been moved
Enqueue = Callable[[str], None]
CLAIMS = "claims/"
TAKEN = f"{CLAIMS}taken/"
SKIPPED = f"{CLAIMS}skipped/"
# Never images: a desktop's own files, and empty objects.
JUNK_NAMES = {"thumbs.db", "desktop.ini", "icon\r"}
# Still being written: partial downloads and copies under a temporary name (rsync, browsers,
# scanners, `aws s3 cp` does not need one). Hidden names (".x") count too: rsync's ".x.AbC12".
TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", "~")


@dataclass(frozen=True)
class Inbox:
    """Where the inbox is and how patient its scanner is."""

    prefix: str = "inbox/"
    bucket: str | None = None  # None: the local folder
    settle_s: float = 0.0  # taken only once unchanged this long (a local file may still grow)
    grace_s: float = 120.0  # a claim not completed after this long is completed by others
    # False for a watched source (another bucket, only read): objects are copied, never moved.
    moves: bool = True
    since: datetime | None = None  # objects last modified before this are passed over


class Claim(BaseModel):
    """What claims/taken/{digest}.json holds: the object and the image it becomes."""

    image_id: str
    key: str  # the object's key in storage
    source: Source
    claimed: datetime
    moves: bool = True  # False: copied from a watched bucket, which is never written


@dataclass
class Scanned:
    """What one scan did (for the log and the tests)."""

    taken: list[str] = field(default_factory=list)  # image ids
    skipped: int = 0
    resumed: list[str] = field(default_factory=list)


def source_digest(source: Source) -> str:
    """The name of an object version's claim: a digest of (bucket, key, ETag).

    The version id is recorded where a lookup gives it, but left out here: a listing (the scan)
    does not carry it and an event's lookup does, and both must name the same claim. Another
    version with other bytes has another ETag.
    """
    identity = [source.bucket, source.key, source.etag]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def key_digest(key: str) -> str:
    """What log lines name instead of an object's key (which names a file)."""
    return hashlib.sha256(key.encode()).hexdigest()


def scan_inbox(
    storage: Storage, inbox: Inbox, enqueue: Enqueue, origin: Storage | None = None
) -> Scanned:
    """Take every new object of the inbox once; objects seen before cost their listing only.

    ``origin`` is the store the inbox lives in when it is not plexzoom's (a watched bucket).
    """
    scanned = Scanned()
    at = datetime.now(UTC)
    listed = (origin or storage).list_objects(inbox.prefix)
    candidates = [o for o in listed if _ready(o, inbox, at)]
    if not candidates:
        return scanned
    taken, skipped = _claimed(storage, TAKEN), _claimed(storage, SKIPPED)
    for found in candidates:
        source = _source(found, inbox)
        digest = source_digest(source)
        if digest in skipped:
            continue
        if digest in taken:  # claimed, yet not moved: in progress, or its taker died
            if inbox.moves:  # watched objects stay where they are, taken or not
                _resume(storage, digest, inbox, at, enqueue, scanned)
        else:
            _admit(storage, found, source, inbox.moves, enqueue, scanned)
    return scanned


def take_object(storage: Storage, inbox: Inbox, key: str, enqueue: Enqueue) -> str | None:
    """Take one object an event named, as a scan would; the id of the image it became, or None
    (not in the inbox, not there yet, still being written, junk, or already taken)."""
    if not key.startswith(inbox.prefix):
        return None
    try:
        found = storage.stat(key)
    except NotFound:  # not there (yet): a later event or the next scan takes it
        return None
    if not _ready(found, inbox, datetime.now(UTC)):
        return None
    scanned = Scanned()
    _admit(storage, found, _source(found, inbox), inbox.moves, enqueue, scanned)
    return scanned.taken[0] if scanned.taken else None


def complete_claim(storage: Storage, claim: Claim, enqueue: Enqueue) -> Manifest | None:
    """Create the claimed image, move the object to its original (copy it, from a watched
    bucket), queue it; idempotent."""
    try:
        # A slide's name (by its ending; its content is checked when it converts) is withheld.
        name = shown_filename(_filename(claim.key), b"", show_slide_labels=False)
        manifest = start_image(storage, name, None, claim.source, claim.image_id)
    except WriteConflict:
        manifest = read_manifest(storage, claim.image_id)
    original = keys.original_key(claim.image_id)
    if manifest.status != "uploading":
        if claim.moves and storage.exists(original):  # moved, but the source stayed
            storage.delete(claim.key)
        return manifest
    try:
        if claim.moves:
            storage.move_if_match(claim.key, original, claim.source.etag)
        else:
            bucket = str(claim.source.bucket)
            storage.copy_if_match(bucket, claim.key, original, claim.source.etag)
    except (NotFound, WriteConflict):
        if not storage.exists(original):  # gone or rewritten before it was taken
            log.info("image %s: its inbox object left first; nothing to convert", manifest.id)
            delete_image(storage, claim.image_id)
            return None
    try:
        fmt = sniff_format(storage.get_range(original, 0, SNIFF_BYTES))
    except UnsupportedFormat as exc:
        return refuse_image(storage, claim.image_id, exc.message)
    queued = submit_image(storage, manifest, fmt, storage.size(original), enqueue)
    if queued.filename is None:  # a slide: its inbox key names it as its file name did
        queued = withhold_inbox_key(storage, queued)
    return queued


def withhold_inbox_key(storage: Storage, manifest: Manifest) -> Manifest:
    """Forget the inbox key a slide was taken from, in its claim and its record (once it is
    queued nothing needs it: the claim is found by its file's name, a digest of the key)."""
    if manifest.source is None or manifest.source.key == WITHHELD:
        return manifest
    digest = source_digest(manifest.source)
    claim = read_claim(storage, digest)
    if claim is not None:
        claim.key = claim.source.key = WITHHELD
        body = claim.model_dump_json().encode()
        storage.put_bytes(TAKEN + f"{digest}.json", body, "application/json")

    def forget(stored: Manifest) -> Manifest | None:
        if stored.source is None or stored.source.key == WITHHELD:
            return None
        stored.source.key = WITHHELD
        return stored

    return update_manifest(storage, manifest.id, forget)


def read_claim(storage: Storage, digest: str) -> Claim | None:
    """The claim of an object version, or None when it has none (or an unreadable one)."""
    try:
        return Claim.model_validate_json(storage.get_bytes(TAKEN + f"{digest}.json"))
    except (NotFound, ValidationError):
        return None


def _admit(
    storage: Storage,
    found: ObjectInfo,
    source: Source,
    moves: bool,
    enqueue: Enqueue,
    scanned: Scanned,
) -> None:
    """Skip junk for good, or claim the object version for a new image and complete it; a
    claim someone else created first means it is theirs."""
    digest = source_digest(source)
    if _is_junk(found):
        if _claim(storage, SKIPPED + f"{digest}.json", {"source": source.model_dump()}):
            scanned.skipped += 1
        return
    claim = Claim(
        image_id=new_image_id(),
        key=found.key,
        source=source,
        claimed=datetime.now(UTC),
        moves=moves,
    )
    if not _claim(storage, TAKEN + f"{digest}.json", claim.model_dump(mode="json")):
        return
    log.info("image %s: taken from the inbox (object %s)", claim.image_id, digest[:12])
    if complete_claim(storage, claim, enqueue) is not None:
        scanned.taken.append(claim.image_id)


def _resume(
    storage: Storage,
    digest: str,
    inbox: Inbox,
    at: datetime,
    enqueue: Enqueue,
    scanned: Scanned,
) -> None:
    """Complete a claim whose taker has not moved the object within the grace period."""
    claim = read_claim(storage, digest)
    if claim is None or at - claim.claimed < timedelta(seconds=inbox.grace_s):
        return
    log.info("image %s: completing its inbox claim (object %s)", claim.image_id, digest[:12])
    if complete_claim(storage, claim, enqueue) is not None:
        scanned.resumed.append(claim.image_id)


def _claim(storage: Storage, key: str, body: dict[str, object]) -> bool:
    """Create a claim if none exists; False when another got there first."""
    try:
        storage.put_if_match(key, json.dumps(body).encode(), None, "application/json")
    except WriteConflict:
        return False
    return True


def _claimed(storage: Storage, prefix: str) -> set[str]:
    """Digests of the claims under ``prefix`` (listing pages only; no claim is read)."""
    return {key[len(prefix) :].removesuffix(".json") for key in storage.list_keys(prefix)}


def _source(found: ObjectInfo, inbox: Inbox) -> Source:
    """The object as the status shows it (local: the key relative to the inbox folder; a
    watched bucket's objects with their bucket)."""
    key = found.key if inbox.bucket else found.key.removeprefix(inbox.prefix)
    return Source(
        bucket=inbox.bucket,
        key=key,
        etag=found.etag,
        version_id=found.version_id,
        size=found.size,
    )


def _ready(found: ObjectInfo, inbox: Inbox, at: datetime) -> bool:
    """Not a file still being written: no temporary or hidden name, unchanged long enough."""
    parts = found.key.removeprefix(inbox.prefix).split("/")
    if any(part.startswith(".") for part in parts):
        return False
    if parts[-1].lower().endswith(TEMPORARY_SUFFIXES):
        return False
    if inbox.since is not None and found.modified < inbox.since:
        return False
    return at - found.modified >= timedelta(seconds=inbox.settle_s)


def _is_junk(found: ObjectInfo) -> bool:
    """Never an image: empty, or a desktop's thumbnail cache or settings."""
    return found.size == 0 or _filename(found.key).lower() in JUNK_NAMES


def _filename(key: str) -> str:
    """The key's last part: the image's file name (metadata only)."""
    return key.rsplit("/", 1)[-1]
