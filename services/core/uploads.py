"""Resumable uploads: a file sent in parts straight into storage, then entered like any upload.

An upload is an image record with status ``uploading`` that names a multipart upload of the
image's original (``Manifest.upload``). Clients PUT the parts to presigned URLs (on S3, to the
bucket; on the local backend, to the api, signed by ``PartUrls``), then complete: the parts are
checked against the declared size, joined, the format is sniffed from the first bytes, and the
image is submitted like every other source (plexzoom.core.images.submit_image).
"""

import base64
import binascii
import functools
import hashlib
import hmac
import math
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from plexzoom.core import keys
from plexzoom.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ImageTooLarge,
    NotFound,
    UnsupportedFormat,
)
from plexzoom.core.formats import SNIFF_BYTES, check_stored, sniff_format
from plexzoom.core.ids import is_image_id, new_image_id
from plexzoom.core.images import Enqueue, delete_image, start_image, submit_image
from plexzoom.core.manifest import Manifest, ResumableUpload, read_manifest, update_manifest
from plexzoom.core.privacy import PRIVACY_HEAD_BYTES, record_names
from plexzoom.core.storage import Part, Storage
from plexzoom.core.storage.parts import MAX_PART_NUMBER, MIN_PART_SIZE, ordered_parts

MIB = 1024 * 1024
DEFAULT_PART_SIZE = 16 * MIB
RESUMABLE_UPLOAD_TTL_S = 7 * 24 * 3600
# Calls on an upload touch its record at most this often (each write is an event).
TOUCH_S = 60.0
NO_UPLOAD = "No such upload: it was completed, aborted or expired, or another API key started it."


def part_size_for(size: int, preferred: int = DEFAULT_PART_SIZE) -> int:
    """The part size of a file of ``size`` bytes: ``preferred`` (at least 5 MiB), grown in whole
    MiB until 10,000 parts hold the file."""
    needed = math.ceil(size / MAX_PART_NUMBER / MIB) * MIB
    return max(preferred, MIN_PART_SIZE, needed)


def part_count(upload: ResumableUpload) -> int:
    """How many parts the upload has."""
    return max(1, math.ceil(upload.size / upload.part_size))


def expected_part_size(upload: ResumableUpload, number: int) -> int:
    """The exact size of part ``number``: ``part_size``, the remainder for the last part."""
    return min(upload.part_size, upload.size - (number - 1) * upload.part_size)


def check_number(upload: ResumableUpload, number: int) -> None:
    """BadRequest unless ``number`` is one of the upload's parts."""
    count = part_count(upload)
    if not 1 <= number <= count:
        raise BadRequest(f"This upload has parts 1 to {count}; there is no part {number}.")


def expires_at(manifest: Manifest, ttl_s: float) -> datetime:
    """When the reconciler aborts the upload unless something touches it first."""
    return manifest.updated + timedelta(seconds=ttl_s)


def create_upload(
    storage: Storage,
    size: int,
    owner: str,
    cap: int,
    name: str | None = None,
    variable: str | None = None,
    preferred_part_size: int = DEFAULT_PART_SIZE,
    crc32: bool = False,
) -> Manifest:
    """Start a resumable upload of ``size`` bytes: a multipart upload of the original and the
    image record (``uploading``) that names it; ``crc32``: its parts carry CRC-32s."""
    if size > cap:
        raise ImageTooLarge(f"The file is larger than this server's upload limit of {cap} bytes.")
    image_id = new_image_id()
    key = keys.original_key(image_id)
    upload_id = storage.create_multipart(key, crc32=crc32)
    upload = ResumableUpload(
        upload_id=upload_id,
        owner=owner,
        size=size,
        part_size=part_size_for(size, preferred_part_size),
        name=name,
        checksum="crc32" if crc32 else None,
    )
    try:
        return start_image(storage, None, variable, image_id=image_id, upload=upload)
    except BaseException:
        storage.abort_multipart(key, upload_id)
        raise


def open_upload(storage: Storage, image_id: str, owner: str) -> tuple[Manifest, ResumableUpload]:
    """The record and open upload of ``image_id`` if ``owner`` started it; NotFound otherwise,
    Conflict when it was completed already."""
    if not is_image_id(image_id):
        raise NotFound(NO_UPLOAD)
    try:
        manifest = read_manifest(storage, image_id)
    except NotFound as exc:
        raise NotFound(NO_UPLOAD) from exc
    upload = manifest.upload
    if upload is None:
        if manifest.status != "uploading" and manifest.source is None:
            raise Conflict(f"This upload is complete; follow the image at /v1/images/{image_id}.")
        raise NotFound(NO_UPLOAD)
    if not hmac.compare_digest(upload.owner, owner):
        raise NotFound(NO_UPLOAD)
    return manifest, upload


def touch(storage: Storage, manifest: Manifest) -> Manifest:
    """Note that the client is still at work, so the reconciler keeps the upload."""
    if datetime.now(UTC) - manifest.updated < timedelta(seconds=TOUCH_S):
        return manifest

    def keep(stored: Manifest) -> Manifest | None:
        return stored if stored.upload is not None else None

    return update_manifest(storage, manifest.id, keep)


def stored_parts(storage: Storage, image_id: str, upload: ResumableUpload) -> list[Part]:
    """The parts stored so far, ascending, one a number; NotFound when the storage has no such
    upload. Of several stored copies of a number (SeaweedFS keeps each until completion), the
    last listed of the right size is given."""
    chosen: dict[int, Part] = {}
    for part in _all_parts(storage, image_id, upload):
        kept = chosen.get(part.number)
        right = expected_part_size(upload, part.number) if part.number <= part_count(upload) else -1
        if kept is None or part.size == right or kept.size != right:
            chosen[part.number] = part
    return list(chosen.values())


def _all_parts(storage: Storage, image_id: str, upload: ResumableUpload) -> list[Part]:
    try:
        return storage.list_parts(keys.original_key(image_id), upload.upload_id)
    except NotFound as exc:
        raise NotFound(NO_UPLOAD) from exc


def complete_upload(
    storage: Storage,
    manifest: Manifest,
    upload: ResumableUpload,
    parts: list[tuple[int, str]],
    enqueue: Enqueue,
    show_slides: bool = False,
    checksums: dict[int, str] | None = None,
) -> Manifest:
    """Join the named parts (``checksums``: their CRC-32s, as the client computed them) into
    the original, check it is an image, queue its conversion.

    Missing parts, wrong ETags and parts of the wrong size are refused and the upload kept, so
    the client can send them again; a file that is no supported image is deleted (415).
    """
    key = keys.original_key(manifest.id)
    stored = _stored_or_joined(storage, key, upload)
    if stored is not None:
        wanted = ordered_parts(parts)
        if upload.checksum == "crc32":
            unnamed = [n for n, _ in wanted if n not in (checksums or {})]
            if unnamed:
                raise BadRequest(
                    f"This upload checks CRC-32s: name each part's crc32 (part {unnamed[0]} "
                    "has none)."
                )
        _check_complete(upload, wanted, stored)
        try:
            storage.complete_multipart(key, upload.upload_id, wanted, checksums)
        except NotFound as exc:  # another completion or an abort got there first
            open_upload(storage, manifest.id, upload.owner)
            raise NotFound(NO_UPLOAD) from exc
    head = storage.get_range(key, 0, PRIVACY_HEAD_BYTES)
    try:
        fmt = sniff_format(head[:SNIFF_BYTES])
        check_stored(storage, key, fmt, upload.size)
    except UnsupportedFormat:
        delete_image(storage, manifest.id)  # the bytes are no image: nothing is kept
        raise
    filename, pending = record_names(upload.name, head, show_slides)
    return submit_image(storage, manifest, fmt, upload.size, enqueue, (filename, pending))


def _stored_or_joined(storage: Storage, key: str, upload: ResumableUpload) -> list[Part] | None:
    """Every stored part of the upload; None when an earlier completion joined them and stopped
    before queueing the image (the multipart upload is gone and the original has the declared
    size); NotFound when neither."""
    try:
        return storage.list_parts(key, upload.upload_id)
    except NotFound as exc:
        try:
            if storage.size(key) == upload.size:
                return None
        except NotFound:
            pass
        raise NotFound(NO_UPLOAD) from exc


def _check_complete(
    upload: ResumableUpload, wanted: list[tuple[int, str]], stored: list[Part]
) -> None:
    """Every part named, each stored with its ETag and the size the layout gives it."""
    count = part_count(upload)
    named = {number for number, _ in wanted}
    extra = sorted(number for number in named if number > count)
    if extra:
        raise BadRequest(f"This upload has parts 1 to {count}; it has no part {extra[0]}.")
    missing = [number for number in range(1, count + 1) if number not in named]
    if missing:
        raise Conflict(
            f"Parts {_ranges(missing)} of {count} are missing: upload them, then complete again."
        )
    sizes = {(part.number, part.etag): part.size for part in stored}
    for number, etag in wanted:
        if (number, etag) not in sizes:
            raise Conflict(
                f"Part {number} is not stored with ETag {etag}; list the upload's parts "
                "(GET /v1/uploads/{id}) and complete with those."
            )
    if sum(sizes[number, etag] for number, etag in wanted) > upload.size:
        raise ImageTooLarge(
            f"The parts hold more than the {upload.size} bytes this upload declared."
        )
    for number, etag in wanted:
        expected = expected_part_size(upload, number)
        if sizes[number, etag] != expected:
            raise BadRequest(
                f"Part {number} has {sizes[number, etag]} bytes; it must have {expected} "
                f"(parts of {upload.part_size} bytes, the last one the rest of the "
                f"{upload.size}): upload it again."
            )


def _ranges(numbers: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7' (at most ten runs, then '...')."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and runs[-1][1] == number - 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:10]]
    return ", ".join(text) + (", ..." if len(runs) > 10 else "")


def abort_upload(storage: Storage, manifest: Manifest, upload: ResumableUpload) -> None:
    """Discard the parts and the record."""
    storage.abort_multipart(keys.original_key(manifest.id), upload.upload_id)
    delete_image(storage, manifest.id)


class PartUrls:
    """Signs and checks the part URLs the api serves itself (storage without presigned URLs).

    A signature is the URL-safe base64 (no padding) of HMAC-SHA256(secret,
    "part/{image id}/{number}/{expiry}/{crc32}"): it lets one part of one upload be PUT until it
    expires, with the bytes of that CRC-32 when one was given ("" otherwise). The secret is
    loaded at the first use (most apis never serve a part).
    """

    def __init__(self, load_secret: Callable[[], bytes]) -> None:
        self._load_secret = functools.cache(load_secret)

    def sign(self, image_id: str, number: int, expires: int, crc32: str = "") -> str:
        """The signature of one part URL."""
        message = f"part/{image_id}/{number}/{expires}/{crc32}".encode()
        digest = hmac.new(self._load_secret(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def query(self, image_id: str, number: int, ttl_s: int, crc32: str | None = None) -> str:
        """The query string of a part URL valid for ``ttl_s`` seconds from now."""
        expires = math.ceil(time.time()) + ttl_s
        signature = self.sign(image_id, number, expires, crc32 or "")
        checksum = f"&crc32={urllib.parse.quote(crc32, safe='')}" if crc32 else ""
        return f"expires={expires}{checksum}&signature={signature}"

    def check(
        self, image_id: str, number: int, expires: int, signature: str, crc32: str = ""
    ) -> None:
        """Forbidden unless the signature is ours and has not expired."""
        expected = self.sign(image_id, number, expires, crc32)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            raise Forbidden("This part URL is not valid; ask the api for a new one.")
        if expires < time.time():
            raise Forbidden(
                "This part URL has expired; sign the part again (POST /v1/uploads/{id}/parts)."
            )


def check_crc32(value: str) -> str:
    """``value`` if it is the base64 of a 4-byte CRC-32; BadRequest otherwise."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 4:
        raise BadRequest(
            "crc32 is the base64 of the part's 4-byte big-endian CRC-32 (zlib.crc32), "
            "like 'NhCmhg=='."
        )
    return value
