"""Source formats are detected from magic bytes only."""

import pytest

from plexzoom.core.errors import UnsupportedFormat
from plexzoom.core.readers import sniff_source

HDF5 = b"\x89HDF\r\n\x1a\n"


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"II*\x00", "tiff"),
        (b"MM\x00*", "tiff"),
        (b"II+\x00", "tiff"),
        (b"MM\x00+", "tiff"),
        (b"MATLAB 5.0 MAT-file, Platform: GLNXA64".ljust(128, b" "), "mat5"),
        (b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ") + HDF5, "mat73"),
        (HDF5 + b"\x00" * 8, "hdf5"),
        (b"\x00" * 512 + HDF5, "hdf5"),
        (b"\x93NUMPY\x01\x00", "npy"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"\x00" * 128 + b"DICM", "dicom"),
        (b"PK\x03\x04", "zip"),  # a multi-file slide; its entries are checked after upload
        (b"SQLite format 3\x00", "svslide"),  # Sakura's slides are SQLite databases
    ],
)
def test_signatures(head: bytes, kind: str) -> None:
    assert sniff_source(head) == kind


@pytest.mark.parametrize("head", [b"", b"GIF89a", b"%PDF-1.7", b"PK\x05\x06", b"\x00" * 600])
def test_other_content_is_refused(head: bytes) -> None:
    with pytest.raises(UnsupportedFormat, match="Supported formats"):
        sniff_source(head)
