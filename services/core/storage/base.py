"""The storage interface every backend implements (tests/core/test_storage_contract.py)."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, NamedTuple, Protocol


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object, with what identifies this version of it."""

    key: str
    etag: str  # without quotes
    size: int
    modified: datetime
    version_id: str | None = None


@dataclass(frozen=True)
class Part:
    """One stored part of a multipart upload."""

    number: int
    size: int
    etag: str  # without quotes
    crc32: str | None = None  # base64 CRC-32 the server keeps (S3 with checksums), else None


class UploadInfo(NamedTuple):
    """One unfinished multipart upload."""

    key: str
    upload_id: str
    initiated: datetime


class ObjectWriter(Protocol):
    """A streaming write of one object: nothing is visible until ``commit``."""

    def write(self, data: bytes) -> None:
        """Append bytes to the object."""

    def commit(self) -> None:
        """Make the object visible under its key."""

    def abort(self) -> None:
        """Discard everything written; leaves no object, part or temp file behind."""


class Storage(Protocol):
    """Keys are '/'-separated strings built by plexzoom.core.keys; values are bytes."""

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        """Write a whole object atomically."""

    def get_bytes(self, key: str) -> bytes:
        """Read a whole object; NotFound when absent."""

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        """Read a whole object and its entity tag; NotFound when absent."""

    def put_if_match(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        """Write only if the object still has ``etag`` (None: only if it does not exist).

        Returns the new entity tag; raises WriteConflict when another writer got there first
        (including a delete). The compare and the write are one atomic step.
        """

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Read ``length`` bytes from ``start``; NotFound when absent."""

    def open_writer(self, key: str) -> ObjectWriter:
        """Start a streaming write (multipart upload on S3)."""

    def upload_file(self, key: str, path: Path) -> None:
        """Write a local file as one object."""

    def download_file(self, key: str, path: Path) -> None:
        """Copy an object to a local file; NotFound when absent."""

    def size(self, key: str) -> int:
        """Size of an object in bytes; NotFound when absent."""

    def exists(self, key: str) -> bool:
        """True when the object exists."""

    def delete(self, key: str) -> None:
        """Delete one object; absent objects are fine."""

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix``."""

    def list_keys(self, prefix: str) -> list[str]:
        """All keys under ``prefix``, ascending."""

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` with its tag, size and time, a page at a time.

        The local backend lists regular files only (never a symbolic link) and tags them by size
        and modification time, so a listing reads no file.
        """

    def stat(self, key: str) -> ObjectInfo:
        """One object's tag, size and time (as list_objects gives them); NotFound when absent."""

    def move_if_match(self, key: str, to: str, etag: str) -> None:
        """Move an object to another key if it still has ``etag``.

        WriteConflict when it changed, NotFound when it is gone. S3 copies (multipart for large
        objects) on the condition, then deletes the source.
        """

    def copy_if_match(self, bucket: str, key: str, to: str, etag: str) -> None:
        """Copy an object of another bucket (a watched source, only read) if it still has
        ``etag``; WriteConflict when it changed, NotFound when gone. S3 only."""

    def list_children(self, prefix: str, start_after: str, limit: int) -> list[str]:
        """Names of the 'folders' directly under ``prefix`` after ``start_after``, ascending."""

    def presign_get(self, key: str, expires_s: int) -> str | None:
        """A URL a browser can GET (with Range) without credentials, or None if unsupported."""

    # Multipart uploads, resumable from a client: parts are numbered 1..10,000 and each part but
    # the last must be at least 5 MiB (S3's rule, enforced by the local backend too).

    def create_multipart(self, key: str, content_type: str = "", crc32: bool = False) -> str:
        """Start a multipart upload of ``key``; returns its upload id. ``crc32``: its parts
        carry CRC-32 checksums, which S3 checks and wants named at completion."""

    def presign_part(
        self, key: str, upload_id: str, number: int, expires_s: int, crc32: str | None = None
    ) -> str | None:
        """A URL a client can PUT part ``number`` to without credentials, or None if unsupported.

        The URL is signed offline: an unknown upload shows only when the client uses it. With
        ``crc32`` (base64 of the part's big-endian CRC-32) the PUT must carry it as the
        ``x-amz-checksum-crc32`` header, and a part whose bytes do not match is refused.
        """

    def put_part(self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]) -> str:
        """Store (or replace) part ``number``; returns its ETag without quotes.

        NotFound for an unknown upload, BadRequest for a number outside 1..10,000.
        """

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """Every stored part, ascending by number; NotFound for an unknown upload.

        A number is listed once, except on servers that keep every upload of a part until
        completion (SeaweedFS): there each stored copy is listed, and completion takes the
        one whose ETag it names.
        """

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: dict[int, str] | None = None,
    ) -> None:
        """Join the named (number, ETag) parts, in ascending order, into the object ``key``
        (``checksums``: the parts' base64 CRC-32s, which S3 wants named at completion).

        Parts not named are discarded. NotFound for an unknown upload; Conflict when a part is
        not stored or has another ETag; BadRequest when a part but the last is under 5 MiB, a
        part is named twice or the list is empty. A refused completion keeps the upload.
        """

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; an unknown upload is fine."""

    def list_multipart_uploads(self, prefix: str) -> list[UploadInfo]:
        """Every unfinished upload of a key under ``prefix``, by key then start time."""

    def ping(self) -> None:
        """Raise StorageError when the backend does not answer."""
