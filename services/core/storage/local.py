"""Local-folder storage: the embedded default. Objects are files; writes are atomic renames."""

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from plexzoom.core.errors import NotFound, StorageError, WriteConflict
from plexzoom.core.storage.base import ObjectInfo, Part, UploadInfo
from plexzoom.core.storage.local_uploads import UPLOADS, LocalUploads, concatenate

_TMP = ".tmp"
_HIDDEN = (_TMP, UPLOADS)  # never keys: unfinished writes and multipart uploads


class _LocalWriter:
    """Writes into a temp file inside the storage root, renamed into place on commit."""

    def __init__(self, final: Path, tmp_dir: Path, key: str) -> None:
        self._final = final
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=_temp_prefix(key))
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        self._final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._tmp, self._final)

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


class LocalStorage:
    """Stores each key as a file under ``root``; survives restarts."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._tmp = self.root / _TMP
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._uploads = LocalUploads(self.root / UPLOADS)

    def path_of(self, key: str) -> Path:
        """The file that holds ``key`` (keys come from plexzoom.core.keys, never user text)."""
        if key.startswith("/") or ".." in key.split("/") or key.startswith(_HIDDEN):
            raise NotFound("No such object.")
        return self.root / key

    def put_bytes(self, key: str, data: bytes, content_type: str = "") -> None:
        writer = self.open_writer(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path_of(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound("No such object.") from exc

    def get_tagged(self, key: str) -> tuple[bytes, str]:
        data = self.get_bytes(key)
        return data, _etag(data)

    def put_if_match(self, key: str, data: bytes, etag: str | None, content_type: str = "") -> str:
        with self._locked():
            try:
                current: str | None = _etag(self.get_bytes(key))
            except NotFound:
                current = None
            if current != etag:
                raise WriteConflict()
            self.put_bytes(key, data, content_type)
        return _etag(data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One lock per storage folder, across processes: conditional writes and deletes."""
        fd = os.open(self._tmp, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            fd = os.open(self.path_of(key), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound("No such object.") from exc
        try:
            return os.pread(fd, length, start)
        except IsADirectoryError as exc:
            raise NotFound("No such object.") from exc
        finally:
            os.close(fd)

    def get_range_cached(self, key: str, start: int, length: int) -> bytes | None:
        """The range if the OS page cache holds it, else None (never waits on the disk)."""
        try:
            fd = os.open(self.path_of(key), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound("No such object.") from exc
        try:
            buffer = bytearray(length)
            got = os.preadv(fd, [buffer], start, os.RWF_NOWAIT)
            return bytes(buffer[:got]) if got == length else None
        except BlockingIOError:
            return None
        except IsADirectoryError as exc:
            raise NotFound("No such object.") from exc
        finally:
            os.close(fd)

    def open_writer(self, key: str) -> _LocalWriter:
        return _LocalWriter(self.path_of(key), self._tmp, key)

    def upload_file(self, key: str, path: Path) -> None:
        target = self.path_of(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{_temp_prefix(key)}{os.urandom(8).hex()}"
        try:
            _link_or_copy(path, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def download_file(self, key: str, path: Path) -> None:
        try:
            _link_or_copy(self.path_of(key), path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise NotFound("No such object.") from exc

    def size(self, key: str) -> int:
        path = self.path_of(key)
        if not path.is_file():
            raise NotFound("No such object.")
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path_of(key)
        with self._locked():
            if path.is_file():
                path.unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        target = self.path_of(prefix.rstrip("/"))
        with self._locked():
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                if prefix and not prefix.endswith("/"):
                    target.unlink()
            # Unfinished writes under the prefix go too (as S3 aborts multipart uploads).
            for unfinished in self._tmp.glob(prefix.replace("/", "~") + "*"):
                unfinished.unlink(missing_ok=True)
            for upload in self._uploads.list_uploads(prefix):
                self._uploads.abort(upload.key, upload.upload_id)

    def list_keys(self, prefix: str) -> list[str]:
        base = self.path_of(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        keys = [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.relative_to(self.root).as_posix().startswith(_HIDDEN)
        ]
        return sorted(keys)

    def list_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.path_of(prefix.rstrip("/")) if prefix else self.root
        for path in sorted(_regular_files(base)):
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix) and not key.startswith(_HIDDEN):
                with contextlib.suppress(FileNotFoundError):  # moved away meanwhile
                    yield _info(key, path.lstat())

    def stat(self, key: str) -> ObjectInfo:
        try:
            found = self.path_of(key).lstat()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound("No such object.") from exc
        if not stat.S_ISREG(found.st_mode):
            raise NotFound("No such object.")
        return _info(key, found)

    def move_if_match(self, key: str, to: str, etag: str) -> None:
        source, target = self.path_of(key), self.path_of(to)
        with self._locked():
            try:
                found = source.lstat()
            except (FileNotFoundError, NotADirectoryError) as exc:
                raise NotFound("No such object.") from exc
            if not stat.S_ISREG(found.st_mode) or _info(key, found).etag != etag:
                raise WriteConflict()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

    def copy_if_match(self, bucket: str, key: str, to: str, etag: str) -> None:
        raise StorageError("The local folder has no buckets to copy from; watch S3 sources.")

    def list_children(self, prefix: str, start_after: str, limit: int) -> list[str]:
        base = self.path_of(prefix.rstrip("/"))
        try:
            names = sorted(e.name for e in os.scandir(base) if e.is_dir() and e.name > start_after)
        except FileNotFoundError:
            return []
        return names[:limit]

    def presign_get(self, key: str, expires_s: int) -> str | None:
        return None

    def create_multipart(self, key: str, content_type: str = "", crc32: bool = False) -> str:
        self.path_of(key)  # refuses a key outside the folder now, not at completion
        return self._uploads.create(key)

    def presign_part(
        self, key: str, upload_id: str, number: int, expires_s: int, crc32: str | None = None
    ) -> str | None:
        return None

    def put_part(self, key: str, upload_id: str, number: int, data: bytes | IO[bytes]) -> str:
        return self._uploads.put(key, upload_id, number, data)

    def list_parts(self, key: str, upload_id: str) -> list[Part]:
        return self._uploads.list_parts(key, upload_id)

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        checksums: dict[int, str] | None = None,
    ) -> None:
        with self._uploads.completing(key, upload_id, parts) as paths:
            concatenate(paths, self.open_writer(key))  # a temp file in .tmp, then a rename

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._uploads.abort(key, upload_id)

    def list_multipart_uploads(self, prefix: str) -> list[UploadInfo]:
        return self._uploads.list_uploads(prefix)

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StorageError(f"The storage folder {self.root} is not writable.")


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a hard link to ``source`` on the same filesystem, else a copy.

    Safe because no object file is ever written in place (writes are renames of new files): a
    link is a snapshot of the object, as a copy is, without copying gigabytes.
    """
    try:
        os.link(source, target)
    except FileNotFoundError:
        raise
    except OSError:  # another filesystem, or one without hard links
        shutil.copyfile(source, target)


def _regular_files(base: Path) -> Iterator[Path]:
    """Regular files under ``base`` at any depth; symbolic links are neither followed nor listed."""
    try:
        entries = list(os.scandir(base))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _regular_files(Path(entry.path))
        elif entry.is_file(follow_symlinks=False):
            yield Path(entry.path)


def _info(key: str, found: os.stat_result) -> ObjectInfo:
    """A listed file: tagged by size and modification time, so listing reads no file."""
    modified = datetime.fromtimestamp(found.st_mtime_ns / 1e9, UTC)
    etag = f"{found.st_size:x}-{found.st_mtime_ns:x}"
    return ObjectInfo(key=key, etag=etag, size=found.st_size, modified=modified)


def _etag(data: bytes) -> str:
    """The entity tag of the local backend: a digest of the bytes."""
    return hashlib.sha256(data).hexdigest()[:32]


def _temp_prefix(key: str) -> str:
    """Temp files are named after their key ('/' as '~', never in a key), so a prefix finds them."""
    return key.replace("/", "~") + "."
