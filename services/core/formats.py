"""Format detection from magic bytes, never from file names."""

from dataclasses import dataclass

from plexzoom.core.errors import UnsupportedFormat

SNIFF_BYTES = 16


@dataclass(frozen=True)
class Format:
    """A supported upload format."""

    name: str
    media_type: str


TIFF = Format("tiff", "image/tiff")
PNG = Format("png", "image/png")
JPEG = Format("jpeg", "image/jpeg")
WEBP = Format("webp", "image/webp")
SUPPORTED = (TIFF, PNG, JPEG, WEBP)
SUPPORTED_NAMES = "TIFF (including BigTIFF and OME-TIFF), PNG, JPEG and WebP"


def sniff_format(head: bytes) -> Format:
    """Return the format whose signature starts ``head``, or raise UnsupportedFormat."""
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return TIFF
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if head[:3] == b"\xff\xd8\xff":
        return JPEG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    raise UnsupportedFormat(
        f"This file is not an image plexzoom can read. Supported formats: {SUPPORTED_NAMES}."
    )


def format_by_name(name: str) -> Format:
    """Return the supported format called ``name``."""
    for fmt in SUPPORTED:
        if fmt.name == name:
            return fmt
    raise UnsupportedFormat(f"Unknown format {name!r}. Supported formats: {SUPPORTED_NAMES}.")
