"""libvips loaders: only the ones plexzoom reads with may run in a process that decodes uploads.

libvips can load dozens of formats (SVG through librsvg, GIF, HEIF, CSV, matrix and .v files,
...), and ``new_from_file`` picks one by sniffing. Every loader is blocked and only those below are
unblocked again (a class and its subclasses: file, buffer and source variants), so a file that
slips past the readers' magic-byte allow-list still cannot reach another parser.
"""

import pyvips

# Names of libvips classes (``vips -l foreign``), checked against libvips 8.18.
ALLOWED_LOADERS = (
    "VipsForeignLoadTiff",  # TIFF, BigTIFF, OME-TIFF, and the worker's scratch TIFFs
    "VipsForeignLoadPng",  # uploads, and the 8-bit channel tiles the tile service mixes
    "VipsForeignLoadJpeg",
    "VipsForeignLoadWebp",
    "VipsForeignLoadRaw",  # rawload: uncompressed TIFF planes mapped from the file
)


def restrict_loaders() -> None:
    """Block libvips' untrusted operations and every loader not in ALLOWED_LOADERS."""
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoad", True)
    for name in ALLOWED_LOADERS:
        pyvips.operation_block_set(name, False)
