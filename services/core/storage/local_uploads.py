"""Multipart uploads of the local backend, one hidden folder per upload.

root/.uploads/{upload id}/upload.json     the key and the start time
root/.uploads/{upload id}/{number:05d}.{md5 of the bytes}   one part (its name carries its ETag)
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from plexzoom.core.errors import BadRequest, NotFound
from plexzoom.core.storage.base import ObjectWriter, Part, UploadInfo
from plexzoom.core.storage.parts import (
    MAX_PART_SIZE,
    check_part_number,
    check_parts,
    ordered_parts,
)

UPLOADS = ".uploads"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART = re.compile(r"(\d{5})\.([0-9a-f]{32})")
_RECORD = "upload.json"
_CHUNK = 8 * 1024 * 1024
_NO_UPLOAD = "No such upload: it was completed or aborted, or never started; start a new one."


class LocalUploads:
    """The unfinished uploads under one folder; safe across threads and processes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def create(self, key: str) -> str:
        """Start an upload of ``key``; its record appears whole (a rename) or not at all."""
        upload_id = secrets.token_hex(16)
        folder = self.folder / upload_id
        folder.mkdir(parents=True)
        record = {"key": key, "initiated": datetime.now(UTC).isoformat()}
        staged = folder / f".{_RECORD}"
        staged.write_text(json.dumps(record))
        os.replace(staged, folder / _RECORD)
        return upload_id

    def put(self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]) -> str:
        """Store part ``number`` through a temp file in the upload's folder; returns its ETag."""
        check_part_number(number)
        folder = self._folder(key, upload_id)
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=".part-")
        except FileNotFoundError as exc:  # aborted or completed meanwhile
            raise NotFound(_NO_UPLOAD) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                etag = _copy_hashing(data, out)
            with self._held(key, upload_id) as held:
                for old in list(_stored_parts(held)):
                    if old.number == number:
                        (held / f"{number:05d}.{old.etag}").unlink(missing_ok=True)
                os.replace(name, held / f"{number:05d}.{etag}")
        finally:
            Path(name).unlink(missing_ok=True)
        return etag

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        """The upload's parts, ascending by number."""
        return sorted(_stored_parts(self._folder(key, upload_id)), key=lambda p: p.number)

    @contextlib.contextmanager
    def completing(
        self, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> Iterator[list[Path]]:
        """The files of the named parts in order, checked as S3 checks them; the upload goes
        once the caller's block ends without error, and stays for a retry when it fails."""
        wanted = ordered_parts(parts)
        with self._held(key, upload_id) as folder:
            check_parts(wanted, list(_stored_parts(folder)))
            yield [folder / f"{number:05d}.{etag}" for number, etag in wanted]
            shutil.rmtree(folder, ignore_errors=True)

    def abort(self, key: str, upload_id: str) -> None:
        """Remove the upload and its parts; an unknown one is fine."""
        with contextlib.suppress(NotFound), self._held(key, upload_id) as folder:
            shutil.rmtree(folder, ignore_errors=True)

    def list_uploads(self, prefix: str) -> list[UploadInfo]:
        """Unfinished uploads of keys under ``prefix``, by key then start time."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if not _UPLOAD_ID.fullmatch(entry.name):
                    continue  # not the folder of an upload
                record = _read_record(Path(entry.path))
                if record is not None and record[0].startswith(prefix):
                    found.append(UploadInfo(record[0], entry.name, record[1]))
        return sorted(found, key=lambda u: (u.key, u.initiated))

    def _folder(self, key: str, upload_id: str) -> Path:
        """The folder of an upload of ``key``; NotFound for an unknown id (checked before any
        path is built from it) or an upload of another key."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NotFound(_NO_UPLOAD)
        folder = self.folder / upload_id
        record = _read_record(folder)
        if record is None or record[0] != key:
            raise NotFound(_NO_UPLOAD)
        return folder

    @contextlib.contextmanager
    def _held(self, key: str, upload_id: str) -> Iterator[Path]:
        """The upload's folder, locked against other writes, completion and abort of it."""
        folder = self._folder(key, upload_id)
        try:
            fd = os.open(folder / _RECORD, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NotFound(_NO_UPLOAD) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink == 0:  # removed while we waited
                raise NotFound(_NO_UPLOAD)
            yield folder
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def concatenate(paths: list[Path], writer: ObjectWriter) -> None:
    """Write the files one after another into ``writer`` and commit it."""
    try:
        for path in paths:
            with path.open("rb") as part:
                while chunk := part.read(_CHUNK):
                    writer.write(chunk)
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def _copy_hashing(data: bytes | IO[bytes], out: IO[bytes]) -> str:
    """Copy a part into ``out``; returns its MD5 (S3's ETag of a part)."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    for chunk in _chunks(data):
        size += len(chunk)
        if size > MAX_PART_SIZE:
            raise BadRequest("A part has at most 5 GiB.")
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()


def _chunks(data: bytes | IO[bytes]) -> Iterator[bytes]:
    """The bytes of a part, a piece at a time when it is a file."""
    if isinstance(data, bytes):
        yield data
        return
    while chunk := data.read(_CHUNK):
        yield chunk


def _stored_parts(folder: Path) -> Iterator[Part]:
    """The parts in an upload's folder, in no order (temp files and the record are skipped)."""
    for entry in os.scandir(folder):
        name = _PART.fullmatch(entry.name)
        if name:
            with contextlib.suppress(FileNotFoundError):  # replaced meanwhile
                size = entry.stat(follow_symlinks=False).st_size
                yield Part(number=int(name[1]), size=size, etag=name[2])


def _read_record(folder: Path) -> tuple[str, datetime] | None:
    """The key and start time of an upload, or None when there is no (whole) record."""
    try:
        record = json.loads((folder / _RECORD).read_text())
        return str(record["key"]), datetime.fromisoformat(record["initiated"])
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, TypeError):
        return None
