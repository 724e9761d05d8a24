"""The hostile corpus: files that are not what their names say, lie in their headers, are cut
short, or point elsewhere; each with the outcome plexzoom owes its sender.

Every file is generated here (nothing binary in git). ``HOSTILE_CASES`` lists them; the HTTP test
(test_hostile.py) sends each under its misleading name.
"""

import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pyvips
import scipy.io
import tifffile

from tests.core.readers.files import write_mat73
from tests.core.readers.hostile import (
    jpeg_claiming,
    png_claiming,
    tiff_claiming,
    tiff_with_absurd_counts,
    tiff_with_garbage_strips,
)

DAMAGED = "truncated or damaged"
UNSUPPORTED = "not an image plexzoom can read"
CLAIM_200K = "200000 x 200000 = 40,000,000,000 pixels; this server accepts at most"


@dataclass(frozen=True)
class Case:
    """One hostile upload and what must come of it.

    ``status`` is the upload's HTTP status; for a 202, ``outcome`` is the final image status and
    ``reason`` a piece of the sentence the user reads (the 4xx ``detail`` otherwise).
    """

    kind: str
    filename: str
    build: Callable[[Path], bytes]
    status: int
    outcome: str | None = None
    reason: str = ""


def _photo(width: int, height: int, fmt: str) -> bytes:
    """A small honest image (noise, so nothing compresses away)."""
    rng = np.random.default_rng(width * 7 + height)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = pyvips.Image.new_from_array(pixels, interpretation="srgb")
    return bytes(image.write_to_buffer(f".{fmt}"))


def _cut(data: bytes) -> bytes:
    """The first half of a file."""
    return data[: len(data) // 2]


def _tiff(array: np.ndarray, **options: object) -> bytes:
    """``array`` as a TIFF (pages along the first axis for 3-D arrays)."""
    out = io.BytesIO()
    tifffile.imwrite(out, array, photometric="minisblack", **options)  # type: ignore[arg-type]
    return out.getvalue()


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("slide.tif", _photo(64, 64, "tif"))
    return out.getvalue()


def _npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


class _Payload:
    """Unpickling this would run code; plexzoom must never unpickle."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (print, ("unpickled!",))


def _pickled_npy(_tmp: Path) -> bytes:
    return _npy(np.array([_Payload(), _Payload()], dtype=object), allow_pickle=True)


def _mat_cells(tmp: Path) -> bytes:
    path = tmp / "cells.mat"
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = np.ones((64, 64)), "text"
    scipy.io.savemat(path, {"c": cells, "s": {"img": np.ones((64, 64))}})
    return path.read_bytes()


def _mat73_external_link(tmp: Path) -> bytes:
    outside = tmp / "outside.h5"
    with h5py.File(outside, "w") as file:
        file.create_dataset("img", data=np.ones((64, 64), np.uint8))
    path = write_mat73(tmp / "linked.mat", {"small": np.ones((4, 4))})
    with h5py.File(path, "a") as file:
        file["img"] = h5py.ExternalLink(str(outside), "/img")
    return path.read_bytes()


def _hdf5_external_storage(tmp: Path) -> bytes:
    raw = tmp / "pixels.raw"
    raw.write_bytes(bytes(64 * 64))
    path = tmp / "external.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("img", shape=(64, 64), dtype="u1", external=[(str(raw), 0, 64 * 64)])
    return path.read_bytes()


def _hdf5_virtual(tmp: Path) -> bytes:
    source = tmp / "source.h5"
    with h5py.File(source, "w") as file:
        file.create_dataset("img", data=np.ones((64, 64), np.uint8))
    layout = h5py.VirtualLayout(shape=(64, 64), dtype="u1")
    layout[:] = h5py.VirtualSource(str(source), "img", shape=(64, 64))
    path = tmp / "virtual.h5"
    with h5py.File(path, "w") as file:
        file.create_virtual_dataset("img", layout)
    return path.read_bytes()


def _tiff_ifd_loop(_tmp: Path) -> bytes:
    """A valid one-page TIFF whose 'next IFD' points back at its first IFD."""
    data = bytearray(_tiff(np.full((64, 64), 9, np.uint8)))
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    struct.pack_into("<I", data, first + 2 + 12 * count, first)
    return bytes(data)


def _png_with_zip(_tmp: Path) -> bytes:
    """A polyglot: a real PNG with a zip archive (an HTML page) appended; unzip opens it too."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return _photo(40, 30, "png") + out.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<image href="file:///etc/passwd"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"

HOSTILE_CASES = [
    Case("empty", "empty.png", lambda _: b"", 415, reason="empty"),
    Case("text", "notes.tif", lambda _: b"just some words\n" * 40, 415, reason=UNSUPPORTED),
    Case("html", "page.jpg", lambda _: HTML, 415, reason=UNSUPPORTED),
    Case("svg", "drawing.png", lambda _: SVG, 415, reason=UNSUPPORTED),
    # A zip is taken only when it holds one multi-file slide (MIRAX, DICOM series).
    Case("zip", "slide.tif", lambda _: _zip(), 415, reason="does not hold a whole-slide scan"),
    Case("gif", "anim.png", lambda _: pyvips.Image.black(8, 8).gifsave_buffer(), 415),
    Case("bmp", "scan.tif", lambda _: b"BM" + bytes(60), 415, reason=UNSUPPORTED),
    Case("pdf", "report.png", lambda _: b"%PDF-1.7\n%\xe2\xe3\n1 0 obj\n" * 20, 415),
    Case("matlab-v4", "old.mat", lambda _: b"MATLAB 4.0" + bytes(600), 415, reason="version"),
    Case(
        "truncated-png", "cut.png", lambda _: _cut(_photo(300, 200, "png")), 202, "failed", DAMAGED
    ),
    Case(
        "truncated-jpeg", "cut.jpg", lambda _: _cut(_photo(300, 200, "jpg")), 202, "failed", DAMAGED
    ),
    Case(
        "truncated-tiff", "cut.tif", lambda _: _cut(_photo(300, 200, "tif")), 202, "failed", DAMAGED
    ),
    Case(
        "png-claims-200000-squared",
        "big.png",
        lambda _: png_claiming(200_000, 200_000),
        202,
        "failed",
        CLAIM_200K,
    ),
    Case(
        "tiff-claims-200000-squared",
        "big.tif",
        lambda _: tiff_claiming(200_000, 200_000),
        202,
        "failed",
        CLAIM_200K,
    ),
    Case(
        "tiled-tiff-claims-200000-squared-named-png",
        "tiles.png",
        lambda _: tiff_claiming(200_000, 200_000, tiled=True),
        202,
        "failed",
        CLAIM_200K,
    ),
    Case(
        "jpeg-claims-65500-squared",
        "huge.jpg",
        lambda _: jpeg_claiming(65_500, 65_500),
        202,
        "failed",
        DAMAGED,
    ),
    Case(
        "tiff-strip-offset-past-end",
        "strip.tif",
        lambda _: tiff_claiming(256, 256, data_offset=0xFFFF_FF00),
        202,
        "failed",
        DAMAGED,
    ),
    Case(
        "tiff-tile-offset-past-end",
        "tile.tif",
        lambda _: tiff_claiming(256, 256, data_offset=0xFFFF_FF00, tiled=True),
        202,
        "failed",
        DAMAGED,
    ),
    Case(
        "tiff-deflate-strips-of-noise",
        "channels.tif",
        lambda _: tiff_with_garbage_strips(),
        202,
        "failed",
        DAMAGED,
    ),
    Case(
        "tiff-strip-tables-of-a-billion-entries",
        "counts.tif",
        lambda _: tiff_with_absurd_counts(),
        202,
        "failed",
        "does not say where its image data is",
    ),
    Case("tiff-ifd-loop", "loop.tif", _tiff_ifd_loop, 202, "ready"),
    Case("png-zero-width", "zero.png", lambda _: png_claiming(0, 64), 202, "failed", DAMAGED),
    Case("tiff-named-png", "photo.png", lambda _: _photo(120, 80, "tif"), 202, "ready"),
    Case("png-with-zip-appended", "polyglot.png", _png_with_zip, 202, "ready"),
    Case(
        "mat-cells-and-structs",
        "cube.mat",
        _mat_cells,
        202,
        "failed",
        "holds no numeric image; variables found: c (cell 1x2), s (struct 1x1)",
    ),
    Case(
        "mat73-external-link",
        "linked.mat",
        _mat73_external_link,
        202,
        "failed",
        "points to data in other files",
    ),
    Case(
        "hdf5-external-storage",
        "raw.h5",
        _hdf5_external_storage,
        202,
        "failed",
        "points to data in other files",
    ),
    Case(
        "hdf5-virtual-dataset",
        "virtual.h5",
        _hdf5_virtual,
        202,
        "failed",
        "points to data in other files",
    ),
    Case("npy-pickled-objects", "array.npy", _pickled_npy, 202, "failed", "pickle"),
    Case(
        "npy-records",
        "table.npy",
        lambda _: _npy(np.zeros((8, 8), dtype=[("a", "u1"), ("b", "f4")])),
        202,
        "failed",
        "records",
    ),
    Case(
        "npy-four-dimensions",
        "movie.npy",
        lambda _: _npy(np.zeros((2, 3, 8, 8), np.uint8)),
        202,
        "failed",
        "2-D images and 3-D stacks",
    ),
    Case(
        "npy-int64",
        "labels.npy",
        lambda _: _npy(np.zeros((8, 8), np.int64)),
        202,
        "failed",
        "int64 are not supported",
    ),
    Case(
        "300-channels",
        "panel.tif",
        lambda _: _tiff(np.zeros((300, 16, 16), np.uint8)),
        202,
        "failed",
        "300 channels; this server accepts at most 256",
    ),
    Case("1x1", "dot.png", lambda _: _photo(1, 1, "png"), 202, "ready"),
    Case("1x200000", "line.png", lambda _: _photo(200_000, 1, "png"), 202, "ready"),
    Case(
        "all-nan-float",
        "nan.tif",
        lambda _: _tiff(np.full((64, 64), np.nan, np.float32)),
        202,
        "ready",
    ),
    Case(
        "name-with-dot-dot",
        "../../../../../tmp/escape.png",
        lambda _: _photo(40, 30, "png"),
        202,
        "ready",
    ),
    Case("name-with-nul", "safe.png\x00.sh", lambda _: _photo(40, 30, "png"), 202, "ready"),
]
