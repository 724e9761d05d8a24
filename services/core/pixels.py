"""Exact pixel values from the original: the numbers the viewer shows under the cursor.

Tiles hold 8-bit display codes, so a value read from them is an approximation. The original
holds the truth: this module opens it with the same reader the conversion used (so channel i
and pixel (x, y) mean the same thing) and looks up single pixels. A TIFF in S3 is read by
ranges, through a block cache: a lookup reads the header once and then one tile (or strip) per
page. Other formats are copied to this machine once, within a size limit. Opened originals are
kept in a small LRU, so the next lookup costs a tile read at most.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyvips
import tifffile

from plexzoom.core import keys
from plexzoom.core.errors import BadRequest, Conflict, CorruptImage, UnsupportedFormat
from plexzoom.core.manifest import Manifest
from plexzoom.core.readers import ChannelSource, ReadOptions, open_source, sniff_source
from plexzoom.core.readers.base import UNREADABLE
from plexzoom.core.readers.tiff import open_tiff_ranged
from plexzoom.core.readers.tiff_layout import tiff_page
from plexzoom.core.storage import LocalStorage, Storage

BLOCK = 256 * 1024  # one ranged read; a 512 x 512 16-bit tile is 512 KiB uncompressed
OPEN_IMAGES = 8  # originals kept open per process
COPY_LIMIT = 1024**3  # non-TIFF originals larger than this are not copied for a lookup


class RangedObject:
    """A stored object read by ranges through an LRU of fixed blocks (thread-safe)."""

    def __init__(self, storage: Storage, key: str, size: int, blocks: int = 64) -> None:
        self.storage, self.key, self.size = storage, key, size
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._capacity = blocks
        self._lock = threading.Lock()

    def read(self, start: int, length: int) -> bytes:
        """Bytes ``start`` .. ``start + length`` (fewer at the end of the object)."""
        end = min(start + length, self.size)
        parts = [self._block(n) for n in range(start // BLOCK, (end - 1) // BLOCK + 1)]
        first = start - (start // BLOCK) * BLOCK
        return b"".join(parts)[first : first + max(end - start, 0)]

    def prefetch(self, ranges: Sequence[tuple[int, int]], pool: ThreadPoolExecutor) -> None:
        """Fetch the blocks of several (start, length) ranges concurrently."""
        blocks = {
            n
            for start, length in ranges
            for n in range(start // BLOCK, (min(start + length, self.size) - 1) // BLOCK + 1)
        }
        list(pool.map(self._block, sorted(blocks)))

    def _block(self, n: int) -> bytes:
        with self._lock:
            if n in self._blocks:
                self._blocks.move_to_end(n)
                return self._blocks[n]
        start = n * BLOCK
        data = self.storage.get_range(self.key, start, min(BLOCK, self.size - start))
        with self._lock:
            self._blocks[n] = data
            while len(self._blocks) > self._capacity:
                self._blocks.popitem(last=False)
        return data

    def file(self) -> RangedFile:
        """A seekable binary file over the object (each with its own position)."""
        return RangedFile(self)


class RangedTiff:
    """The pages of a TIFF in storage as libvips images, each opened once and kept.

    libvips reads through Python callbacks (``pyvips.SourceCustom``); the source must live as
    long as any image made from it, so both stay here for the life of the opened original.
    """

    def __init__(self, obj: RangedObject) -> None:
        self.obj = obj
        self._pages: dict[tuple[int, str], tuple[pyvips.Image, pyvips.SourceCustom]] = {}
        self._lock = threading.Lock()

    def __call__(self, page: int, access: str) -> pyvips.Image:
        with self._lock:
            if (page, access) not in self._pages:
                file = self.obj.file()
                source = pyvips.SourceCustom()
                source.on_read(file.read)
                source.on_seek(file.seek)
                image = pyvips.Image.tiffload_source(
                    source, page=page, access=access, fail_on="error"
                )
                self._pages[page, access] = (image, source)
            return self._pages[page, access][0]


class RangedFile(io.RawIOBase):
    """Read-only, seekable file view of a RangedObject."""

    def __init__(self, obj: RangedObject) -> None:
        super().__init__()
        self.obj, self.pos = obj, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.obj.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.obj.read(self.pos, len(buffer)) if self.pos < self.obj.size else b""
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self.obj.size - self.pos
        data = self.obj.read(self.pos, size) if self.pos < self.obj.size else b""
        self.pos += len(data)
        return data


@dataclass(frozen=True)
class _Segments:
    """Where one TIFF page keeps the tile or strip of each pixel."""

    width: int  # of a tile, or of the image for strips
    height: int  # of a tile, or rows per strip
    across: int  # tiles per row
    offsets: tuple[int, ...]
    counts: tuple[int, ...]

    @classmethod
    def of(cls, page: tifffile.TiffPage) -> _Segments:
        if page.is_tiled:
            width, height = page.tilewidth, page.tilelength
        else:
            width, height = page.imagewidth, page.rowsperstrip or page.imagelength
        across = -(-page.imagewidth // width)
        return cls(width, height, across, page.dataoffsets, page.databytecounts)

    def holding(self, x: int, y: int) -> tuple[int, int]:
        """(offset, length) of the segment that holds pixel (x, y)."""
        index = (y // self.height) * self.across + x // self.width  # strips: one across
        index = min(index, len(self.offsets) - 1)
        return self.offsets[index], self.counts[index]


@dataclass
class _Opened:
    source: ChannelSource
    ranged: RangedObject | None = None
    segments: dict[int, _Segments] | None = None  # by page, for a ranged TIFF
    copy: Path | None = None  # a temporary copy of the original, removed on close

    def prefetch(self, x: int, y: int, channels: Sequence[int], pool: ThreadPoolExecutor) -> None:
        """Fetch the segments that hold (x, y) on each channel's page, all at once."""
        pages = self.source.channel_pages
        if self.ranged is None or self.segments is None or pages is None:
            return
        wanted = {pages[c] for c in channels}
        self.ranged.prefetch([self.segments[p].holding(x, y) for p in sorted(wanted)], pool)

    def close(self) -> None:
        self.source.close()
        if self.copy is not None:
            shutil.rmtree(self.copy.parent, ignore_errors=True)


class PixelLookup:
    """Looks up native pixel values in originals; one instance per process."""

    def __init__(self, storage: Storage, scratch_dir: Path | None = None) -> None:
        self.storage = storage
        self.scratch_dir = scratch_dir
        self._open: OrderedDict[tuple[str, str], _Opened] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="plexzoom-pixels")

    def values(
        self, manifest: Manifest, x: int, y: int, channels: Sequence[int] | None = None
    ) -> list[float]:
        """The native value of ``channels`` (default: all) at full-resolution pixel (x, y)."""
        if manifest.status != "ready" or manifest.width is None or manifest.height is None:
            raise Conflict("The image is not converted yet; its values can be read once ready.")
        if not (0 <= x < manifest.width and 0 <= y < manifest.height):
            raise BadRequest(
                f"Pixel ({x}, {y}) is outside the image, which is "
                f"{manifest.width} x {manifest.height} pixels."
            )
        count = len(manifest.channels)
        wanted = list(range(count)) if channels is None else list(channels)
        bad = [c for c in wanted if not 0 <= c < count]
        if bad:
            raise BadRequest(f"Channel {bad[0]} does not exist; the image has {count} channels.")
        with self._opened(manifest) as opened:
            source = opened.source
            if (source.width, source.height) != (manifest.width, manifest.height):
                raise Conflict("The original does not match the converted image; convert again.")
            if not wanted:
                return []
            if source.read_point is not None:  # one pixel read on its own (slides)
                point = source.read_point(x, y)
                return [point[c] for c in wanted]
            opened.prefetch(x, y, wanted, self._pool)
            try:
                point = source.bands(wanted).crop(x, y, 1, 1)
                return [float(v) for v in point.getpoint(0, 0)]
            except pyvips.Error as exc:
                raise CorruptImage(UNREADABLE) from exc

    def close(self) -> None:
        """Close every open original and stop the fetching threads."""
        with self._lock:
            for opened in self._open.values():
                opened.close()
            self._open.clear()
        self._pool.shutdown(wait=False)

    @contextmanager
    def _opened(self, manifest: Manifest) -> Iterator[_Opened]:
        key = (manifest.id, manifest.generation)
        with self._lock:
            opened = self._open.get(key)
            if opened is not None:
                self._open.move_to_end(key)
        if opened is None:
            opened = self._open_original(manifest)
            with self._lock:
                self._open[key] = opened
                while len(self._open) > OPEN_IMAGES:
                    self._open.popitem(last=False)[1].close()
        yield opened

    def _open_original(self, manifest: Manifest) -> _Opened:
        """The original, opened with the reader the conversion used (random access)."""
        key = keys.original_key(manifest.id)
        options = ReadOptions(random_access=True, variable=manifest.variable)
        if isinstance(self.storage, LocalStorage):
            return _Opened(open_source(self.storage.path_of(key), options))
        size = self.storage.size(key)
        ranged = RangedObject(self.storage, key, size)
        if sniff_source(ranged.read(0, 520)) == "tiff":
            try:
                file = io.BufferedReader(ranged.file())
                source = open_tiff_ranged(file, RangedTiff(ranged), options)
            except UnsupportedFormat as exc:  # a layout read only from a local copy
                raise Conflict(exc.message) from exc
            with tifffile.TiffFile(io.BufferedReader(ranged.file())) as tif:
                pages = sorted(set(source.channel_pages or []))
                segments = {p: _Segments.of(tiff_page(tif, p)) for p in pages}
            return _Opened(source, ranged, segments)
        if size > COPY_LIMIT:
            raise Conflict(
                f"Exact values are looked up in originals up to {COPY_LIMIT // 1024**2} MiB "
                "unless they are TIFF files; the values shown come from the display tiles."
            )
        folder = Path(tempfile.mkdtemp(prefix="plexzoom-pixels-", dir=self.scratch_dir))
        copy = folder / "original"
        try:
            self.storage.download_file(key, copy)
            return _Opened(open_source(copy, options), copy=copy)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
