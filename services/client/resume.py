"""Where unfinished uploads are remembered, so that rerunning the same upload resumes it.

One small JSON file per upload in ``$XDG_STATE_HOME/plexzoom/uploads/`` (default
``~/.local/state/plexzoom/uploads/``), named by a hash of what identifies the upload: the file's
absolute path, size and modification time (ns) and the server's URL. A file that changed is a
new upload; the server's own list of stored parts says what is left to send.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


def state_dir(environ: dict[str, str] | None = None) -> Path:
    """The folder of upload states (XDG Base Directory: $XDG_STATE_HOME/plexzoom/uploads)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "plexzoom" / "uploads"


@dataclass(frozen=True)
class FileKey:
    """What identifies one upload of one file to one server."""

    path: str
    size: int
    mtime_ns: int
    server: str

    @classmethod
    def of(cls, path: Path, server: str) -> FileKey:
        """The key of ``path`` as it is now."""
        stat = path.stat()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns, server.rstrip("/"))

    def digest(self) -> str:
        """A file name for this key."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class Saved:
    """What is kept of an unfinished upload."""

    upload_id: str
    part_size: int
    parts: int


class ResumeStore:
    """Unfinished uploads by file key; every write is atomic (a temp file, then a rename)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or state_dir()

    def _file(self, key: FileKey) -> Path:
        return self.folder / f"{key.digest()}.json"

    def load(self, key: FileKey) -> Saved | None:
        """The saved upload of ``key``; None when there is none or it cannot be read."""
        try:
            body = json.loads(self._file(key).read_text())
            if body.get("key") != asdict(key):
                return None
            return Saved(str(body["upload_id"]), int(body["part_size"]), int(body["parts"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, key: FileKey, saved: Saved) -> None:
        """Remember an upload under way."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = json.dumps({"key": asdict(key), **asdict(saved)}, indent=1)
        fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self._file(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def forget(self, key: FileKey) -> None:
        """Drop the saved upload (completed, or gone on the server)."""
        with contextlib.suppress(FileNotFoundError):
            self._file(key).unlink()
