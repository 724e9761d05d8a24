"""Formats are detected from magic bytes only."""

import io

import numpy as np
import pytest
import tifffile

from plexzoom.core.errors import UnsupportedFormat
from plexzoom.core.formats import (
    JPEG,
    PNG,
    SNIFF_BYTES,
    SUPPORTED,
    TIFF,
    WEBP,
    Format,
    format_by_name,
    sniff_format,
)
from tests.conftest import encode, quadrant_image


def _tiff(byteorder: str, bigtiff: bool) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, np.zeros((8, 8), np.uint8), byteorder=byteorder, bigtiff=bigtiff)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_tiff("<", bigtiff=False), TIFF),
        (_tiff(">", bigtiff=False), TIFF),
        (_tiff("<", bigtiff=True), TIFF),
        (_tiff(">", bigtiff=True), TIFF),
        (encode(quadrant_image(16, 16), "tiff"), TIFF),
        (encode(quadrant_image(16, 16), "png"), PNG),
        (encode(quadrant_image(16, 16), "jpeg"), JPEG),
        (encode(quadrant_image(16, 16), "webp"), WEBP),
    ],
    ids=["tiff-II", "tiff-MM", "bigtiff-II", "bigtiff-MM", "vips-tiff", "png", "jpeg", "webp"],
)
def test_real_files_are_recognised_from_their_first_bytes(data: bytes, expected: Format) -> None:
    """Files written by real encoders are recognised from SNIFF_BYTES bytes."""
    assert sniff_format(data[:SNIFF_BYTES]) == expected
    assert sniff_format(data) == expected


def test_signatures_in_the_header_are_what_count() -> None:
    """Hand-made headers: both TIFF byte orders, BigTIFF, PNG, JPEG, WebP."""
    assert sniff_format(b"II*\x00" + bytes(12)) == TIFF
    assert sniff_format(b"MM\x00*" + bytes(12)) == TIFF
    assert sniff_format(b"II+\x00\x08\x00\x00\x00" + bytes(8)) == TIFF
    assert sniff_format(b"MM\x00+\x00\x08\x00\x00" + bytes(8)) == TIFF
    assert sniff_format(b"\x89PNG\r\n\x1a\n" + bytes(8)) == PNG
    assert sniff_format(b"\xff\xd8\xff\xe0" + bytes(12)) == JPEG
    assert sniff_format(b"RIFF\x24\x00\x00\x00WEBPVP8 ") == WEBP


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is text\n",
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"PK\x05\x06" + bytes(18),  # an empty zip (a zip's entries are checked after upload)
        b"GIF89a\x01\x00\x01\x00",
        b"%PDF-1.7\n",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"P6\n4 4\n255\n",
        b"\x89PNG",  # cut short before the signature ends
        b"\xff\xd8",
        b"II*",
        b"ii*\x00" + bytes(12),
        b"\x00" * 16,
        b"image.png",  # the name of a format is not the format
    ],
)
def test_anything_else_is_unsupported_and_says_what_is(data: bytes) -> None:
    """Text, HTML, empty input, zip and other formats are refused naming the supported formats."""
    with pytest.raises(UnsupportedFormat) as caught:
        sniff_format(data)
    for name in ("TIFF", "PNG", "JPEG", "WebP"):
        assert name in caught.value.message


def test_formats_by_name() -> None:
    """Each supported format is found by its name; other names are unsupported."""
    for fmt in SUPPORTED:
        assert format_by_name(fmt.name) is fmt
    assert {f.name for f in SUPPORTED} == {
        "tiff",
        "png",
        "jpeg",
        "webp",
        "mat5",
        "mat73",
        "hdf5",
        "npy",
        "dicom",
        "zip",
        "svslide",
    }
    for name in ("gif", "TIFF", "", "../png"):
        with pytest.raises(UnsupportedFormat):
            format_by_name(name)


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"MATLAB 5.0 MAT-file, Platform: x" + bytes(96), "mat5"),
        (b"MATLAB 7.3 MAT-file".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n", "mat73"),
        (b"\x89HDF\r\n\x1a\n" + bytes(8), "hdf5"),
        (b"\x93NUMPY\x01\x00" + bytes(8), "npy"),
    ],
)
def test_array_formats_are_recognised(head: bytes, name: str) -> None:
    """MATLAB, HDF5 and NumPy uploads are recognised from their headers."""
    assert sniff_format(head).name == name
