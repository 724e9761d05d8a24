"""Multi-file slides (MIRAX .mrxs with its data folder, DICOM WSI series, Hamamatsu VMS) in one zip.

The zip is checked from its directory before anything is written (``check_slide_zip``, which the
API and the inbox also run on upload), then unpacked safely: no absolute names, no ``..``, no
links, no encrypted entries, limits on the number of entries, the unpacked size and each entry's
compression ratio, and every entry's bytes counted as they are written, whatever its header says.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from plexzoom.core.errors import CorruptImage, ImageTooLarge, UnsupportedFormat
from plexzoom.core.readers.base import ChannelSource, ReadOptions
from plexzoom.core.readers.openslide_reader import open_openslide

# The file OpenSlide is given, by the name's ending; DICOM files are also found by content.
_KEY_FILES = (".mrxs", ".vms", ".vmu")
_DICOM = (".dcm", ".dicom")
_CHUNK = 1024**2
NOT_A_SLIDE = (
    "This zip does not hold a whole-slide scan plexzoom can read: it must contain one MIRAX "
    "slide (the .mrxs file beside its data folder), one Hamamatsu .vms or .vmu slide with its "
    "files, the .dcm files of one DICOM WSI series, or a Trestle .tif with its .Full file."
)


def check_slide_zip(file: IO[bytes], options: ReadOptions) -> list[zipfile.ZipInfo]:
    """The entries of a zip that holds one slide, within the limits; else raise a 4xx error."""
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UnsupportedFormat(
            "The zip could not be read: it may be truncated or damaged. " + NOT_A_SLIDE
        ) from exc
    if len(entries) > options.max_zip_entries:
        raise ImageTooLarge(
            f"The zip holds {len(entries)} entries; this server accepts at most "
            f"{options.max_zip_entries}. Zip one slide's files only."
        )
    total = 0
    for entry in entries:
        _check_entry(entry, options)
        total += entry.file_size
    if total > options.max_unpacked_bytes:
        raise ImageTooLarge(
            f"The zip unpacks to {total:,} bytes; this server accepts at most "
            f"{options.max_unpacked_bytes:,}. Upload one slide per zip."
        )
    _key_file([PurePosixPath(e.filename) for e in entries if not e.is_dir()])
    return entries


def open_slide_zip(path: Path, options: ReadOptions) -> ChannelSource:
    """Unpack the zip at ``path`` and open the slide it holds with OpenSlide: beside the zip
    (the conversion's scratch folder), or in a temporary folder for pixel lookups, whose zip
    may be the stored original itself."""
    if options.random_access:
        folder = Path(tempfile.mkdtemp(prefix="plexzoom-slide-"))
    else:
        folder = path.parent / f"{path.name}-unpacked"
    with path.open("rb") as file:
        entries = check_slide_zip(file, options)
    try:
        try:
            _unpack(path, entries, folder, options)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise CorruptImage(
                "The zip's data is damaged (an entry does not match its checksum or is cut "
                "short). Zip the slide's files again and upload the new zip."
            ) from exc
        names = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
        key = folder / _key_file([PurePosixPath(n.as_posix()) for n in names])
        source = open_openslide(key, options, scratch=folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    close = source.on_close

    def close_and_remove() -> None:
        if close is not None:
            close()
        shutil.rmtree(folder, ignore_errors=True)

    source.on_close = close_and_remove
    return source


def _check_entry(entry: zipfile.ZipInfo, options: ReadOptions) -> None:
    """Refuse an entry that could escape the folder, is a link, encrypted, or a zip bomb."""
    name = PurePosixPath(entry.filename.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or ":" in entry.filename:
        raise UnsupportedFormat(
            f"The zip holds an entry named {entry.filename[:80]!r}, which points outside the "
            "zip. Zip the slide's folder again with relative names."
        )
    if stat.S_ISLNK(entry.external_attr >> 16):
        raise UnsupportedFormat("The zip holds a symbolic link; zip the slide's files instead.")
    if entry.flag_bits & 0x1:
        raise UnsupportedFormat("The zip is encrypted; upload it without a password.")
    ratio = entry.file_size / max(entry.compress_size, 1)
    if entry.file_size > _CHUNK and ratio > options.max_zip_ratio:
        raise ImageTooLarge(
            f"An entry of the zip unpacks to {ratio:.0f} times its stored size; this server "
            f"accepts at most {options.max_zip_ratio:.0f}. Zip the slide without tricks."
        )


def _key_file(names: list[PurePosixPath]) -> PurePosixPath:
    """The one file of the slide OpenSlide opens (the rest are found beside it)."""
    for ending in _KEY_FILES:
        found = [n for n in names if n.suffix.lower() == ending]
        if len(found) > 1:
            raise UnsupportedFormat(
                f"The zip holds {len(found)} {ending} slides; upload one slide per zip."
            )
        if found:
            return found[0]
    dicom = sorted(n for n in names if n.suffix.lower() in _DICOM and not n.name.startswith("."))
    if dicom:  # OpenSlide finds the series' other files beside the one it is given
        return dicom[0]
    trestle = [n for n in names if n.suffix.lower() in (".tif", ".tiff")
               and n.with_suffix(".Full") in names]  # fmt: skip
    if len(trestle) == 1:  # a Trestle slide: the TIFF beside its .Full macro
        return trestle[0]
    raise UnsupportedFormat(NOT_A_SLIDE)


def _unpack(path: Path, entries: list[zipfile.ZipInfo], folder: Path, options: ReadOptions) -> None:
    """Write each file entry under ``folder``, counting its real bytes against its header."""
    written = 0
    with zipfile.ZipFile(path) as archive:
        for entry in entries:
            if entry.is_dir():
                continue
            target = folder.joinpath(*PurePosixPath(entry.filename.replace("\\", "/")).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(entry) as data, target.open("wb") as out:
                size = 0
                while chunk := data.read(_CHUNK):
                    size += len(chunk)
                    written += len(chunk)
                    if size > entry.file_size or written > options.max_unpacked_bytes:
                        raise ImageTooLarge("The zip unpacks to more bytes than it declares.")
                    out.write(chunk)
