"""TIFF, BigTIFF and OME-TIFF: tifffile reads the structure, libvips decodes pixels lazily."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pyvips
import tifffile

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import (
    DTYPE_TO_VIPS,
    UNREADABLE,
    VIPS_TO_DTYPE,
    ChannelInfo,
    ChannelSource,
    ReadOptions,
    check_dtype,
    check_pixel_depth,
    check_size,
    rgb_channels,
)
from plexzoom.core.readers.openslide_reader import open_openslide
from plexzoom.core.readers.slide import SLIDE_KINDS, slide_info
from plexzoom.core.readers.tiff_direct import check_decodable, direct_loader, needs_direct
from plexzoom.core.readers.tiff_layout import TiffPlan, plan_tiff, tiff_page

_COLOUR_INTERPRETATIONS = ("srgb", "rgb16", "cmyk")
_COLOUR_PHOTOMETRICS = (2, 3, 5, 6)  # RGB, palette, separated (CMYK), YCbCr
# Slides whose pixels libvips' TIFF loader cannot assemble (NDPI: one JPEG per level, larger
# than a JPEG may be; SCN: several images on one page set; BIF and Trestle: overlapping
# tiles): OpenSlide.
DRIVER_KINDS = ("ndpi", "scn", "bif", "trestle")
_TIFF_ERRORS = (tifffile.TiffFileError, ValueError, OSError, struct.error, IndexError, KeyError)
# Where libvips reads the TIFF's pages: a local path, or a loader of (page, access) that reads
# the bytes from elsewhere (plexzoom.core.pixels: ranged reads of an original in S3).
TiffBytes = str | Callable[[int, str], pyvips.Image]


class _Header(NamedTuple):
    """What the channel page holds, as libvips will deliver it."""

    width: int
    height: int
    bands: int
    format: str
    interpretation: str


def open_tiff(path: Path, options: ReadOptions) -> ChannelSource:
    """Open a TIFF, BigTIFF or OME-TIFF as channels (OME metadata where present)."""
    try:
        with tifffile.TiffFile(path) as tif:
            kinds = slide_kinds(tif)
            source = None if set(kinds) & set(DRIVER_KINDS) else _open(str(path), tif, options)
    except _TIFF_ERRORS as exc:
        raise CorruptImage(UNREADABLE) from exc
    if source is None:
        return open_openslide(path, options)
    vendor_tags = bool(kinds)
    # OpenSlide (a native library) is loaded only for TIFFs tifffile sees a vendor's tags in.
    slide = slide_info(path) if vendor_tags else None
    if slide is not None:  # a whole-slide scan: its driver's pixel size and objective
        source.notes.update(slide.notes())
        source.slide_path = path
        if source.physical_size is None and slide.mpp is not None:
            source.physical_size = (slide.mpp[0], slide.mpp[1], "µm")
    return source


def slide_kinds(tif: tifffile.TiffFile) -> list[str]:
    """The slide vendors whose marks the TIFF's first page carries (tifffile's flags, and
    Trestle's Software tag)."""
    kinds = [kind for kind in SLIDE_KINDS if getattr(tif, f"is_{kind}")]
    if str(tif.pages.first.software).startswith("MedScan"):
        kinds.append("trestle")
    return kinds


def open_tiff_ranged(
    file: BinaryIO, load_page: Callable[[int, str], pyvips.Image], options: ReadOptions
) -> ChannelSource:
    """Open a TIFF that is not on this machine: tifffile reads ``file``, libvips ``load_page``.

    Both read by ranges, so looking up a pixel of a tiled TIFF reads its header and one tile.
    """
    try:
        with tifffile.TiffFile(file) as tif:
            if set(slide_kinds(tif)) & set(DRIVER_KINDS):
                raise UnsupportedFormat(
                    "This whole-slide scan is read through OpenSlide, which reads only from a "
                    "copy on this machine."
                )
            return _open(load_page, tif, options)
    except _TIFF_ERRORS as exc:
        raise CorruptImage(UNREADABLE) from exc


def _open(origin: TiffBytes, tif: tifffile.TiffFile, options: ReadOptions) -> ChannelSource:
    """Plan the pages, check the pixel type and build the channel loader."""
    plan = plan_tiff(tif, options)
    page = tiff_page(tif, plan.pages[0])
    check_size(page.imagewidth, page.imagelength, options)  # before libvips reads the page
    _check_data_in_file(tif, plan.pages)
    direct = needs_direct(page)
    if direct:
        check_decodable(page)
    if direct and not isinstance(origin, str):
        raise UnsupportedFormat(
            "This TIFF stores its samples in separate planes, as 64-bit numbers or with a "
            "compression libvips cannot decode; its pixels are read only from a copy on this "
            "machine."
        )
    head = _tiff_header(page) if direct else _vips_header(origin, plan.pages[0])
    if page.planarconfig == 2 and page.samplesperpixel > 1:
        plan.notes["planar"] = "separate"
    dtype = check_dtype(VIPS_TO_DTYPE.get(head.format, head.format))
    is_rgb = _is_rgb(head, plan.photometric) and dtype in ("uint8", "uint16")
    if is_rgb and len(plan.pages) > 1:
        plan.notes["pages_ignored"] = sorted(plan.notes.get("pages_ignored", []) + plan.pages[1:])
        plan.pages = plan.pages[:1]
    bands = 3 if is_rgb else _bands(head, plan)
    if plan.alpha and head.bands > bands:
        plan.notes["alpha"] = "ignored"
    extra = head.bands - bands - (1 if plan.alpha else 0)
    if extra > 0 and head.interpretation != "cmyk":
        plan.notes["samples_ignored"] = extra
    channels = rgb_channels() if is_rgb else _channel_infos(plan, bands)
    check_pixel_depth(len(channels), np.dtype(dtype).itemsize, options)
    # Single pixels (value lookups) need random access; whole pages stream top to bottom.
    access = "random" if options.random_access else "sequential"
    load: Callable[[int], pyvips.Image]
    if direct:
        assert isinstance(origin, str)
        load = direct_loader(Path(origin), tif, plan.pages, bands, options)
    else:
        cmyk = head.interpretation == "cmyk"
        load = partial(_load_band, origin, plan.pages, bands, cmyk, access)
    load_bands = None if direct or is_rgb else partial(_load_bands, origin, plan.pages, bands)
    picture = None
    if is_rgb and direct:
        picture = partial(_join_rgb, load)
    elif is_rgb:
        # dzsave reads a tiled page about 4 % faster with random access (bench/dzsave_options.py);
        # strips stay sequential, so a huge strip is never decoded twice.
        access = "random" if page.is_tiled or options.random_access else "sequential"
        picture = partial(_load_page, origin, plan.pages[0], access)
    return ChannelSource(
        width=head.width,
        height=head.height,
        dtype=dtype,
        channels=channels,
        is_rgb=is_rgb,
        physical_size=plan.physical_size,
        notes=plan.notes,
        load_channel=load,
        load_bands=load_bands,
        pages_apart=bands == 1 and not is_rgb,
        load_picture=picture,
        channel_pages=[plan.pages[i // bands] for i in range(len(channels))],
    )


def _check_data_in_file(tif: tifffile.TiffFile, pages: list[int]) -> None:
    """Refuse strips or tiles that lie past the end of the file (truncated or forged offsets)."""
    size = tif.filehandle.size
    for index in pages:
        page = tiff_page(tif, index)
        offsets, counts = page.dataoffsets, page.databytecounts
        if len(offsets) == 0 or len(offsets) != len(counts):
            raise CorruptImage(
                f"The TIFF's page {index} does not say where its image data is: the file is "
                "damaged. Export it again and upload the new file."
            )
        ends = np.asarray(offsets, np.int64) + np.asarray(counts, np.int64)
        if int(ends.max()) > size:
            raise CorruptImage(
                f"The TIFF's page {index} places image data at byte {int(ends.max())}, but the "
                f"file has {size} bytes: it is truncated or damaged. Upload the complete file."
            )


def _vips_header(origin: TiffBytes, page: int) -> _Header:
    """The libvips view of one page (header only; pixels stay on disk)."""
    try:
        image = _load_page(origin, page)
    except pyvips.Error as exc:
        raise CorruptImage(UNREADABLE) from exc
    return _Header(image.width, image.height, image.bands, image.format, image.interpretation)


def _tiff_header(page: tifffile.TiffPage) -> _Header:
    """The header of a page that bypasses libvips' TIFF loader (see tiff_direct)."""
    fmt = DTYPE_TO_VIPS[check_dtype(page.dtype.name if page.dtype else str(page.bitspersample))]
    colour = "srgb" if int(page.photometric) == 2 else "multiband"
    return _Header(page.imagewidth, page.imagelength, page.samplesperpixel, fmt, colour)


def _is_rgb(head: _Header, photometric: int) -> bool:
    """A colour photograph or brightfield slide (the composite is the image)."""
    if head.interpretation == "cmyk":
        return True
    colour = head.interpretation in _COLOUR_INTERPRETATIONS or photometric in _COLOUR_PHOTOMETRICS
    return colour and head.bands in (3, 4)


def _bands(head: _Header, plan: TiffPlan) -> int:
    """Channels each page contributes: its samples less a trailing alpha."""
    return head.bands - 1 if plan.alpha and head.bands > 1 else head.bands


def _channel_infos(plan: TiffPlan, bands: int) -> list[ChannelInfo]:
    """One ChannelInfo per (page, band), named from metadata where it fits."""
    count = len(plan.pages) * bands
    if len(plan.channels) == count:
        infos = plan.channels
    else:
        infos = [ChannelInfo(i, f"Channel {i + 1}", None) for i in range(count)]
    colours = {info.color for info in infos}
    if count > 1 and len(colours) == 1 and None not in colours:
        plan.notes["colors_ignored"] = f"every channel had colour {infos[0].color}"
        for info in infos:
            info.color = None
    return infos


def _load_band(
    origin: TiffBytes, pages: list[int], bands: int, cmyk: bool, access: str, i: int
) -> pyvips.Image:
    """Channel ``i``: band ``i % bands`` of page ``pages[i // bands]``."""
    image = _load_page(origin, pages[i // bands], access)
    if cmyk:
        image = image.colourspace("srgb")
    return image.extract_band(i % bands) if image.bands > 1 else image


def _load_page(origin: TiffBytes, page: int, access: str = "sequential") -> pyvips.Image:
    """One whole page as libvips decodes it (colour, alpha and profile kept)."""
    if not isinstance(origin, str):
        return origin(page, access)
    image: pyvips.Image = pyvips.Image.tiffload(origin, page=page, access=access, fail_on="error")
    return image


def _join_rgb(load: Callable[[int], pyvips.Image]) -> pyvips.Image:
    """Channels 0, 1, 2 as one sRGB picture (as multiband, libvips takes band 3 for alpha)."""
    bands = [load(i) for i in range(3)]
    image = bands[0].bandjoin(bands[1:])
    return image.copy(interpretation="srgb" if image.format == "uchar" else "rgb16")


def _load_bands(
    origin: TiffBytes, pages: list[int], bands: int, indices: Sequence[int]
) -> pyvips.Image:
    """Channels ``indices`` as bands, each page opened once (interleaved pages decode once).

    Runs of neighbouring bands of a page are taken in one ``extract_band`` (a whole page as it
    is): one operation per band and a join of eight cost a quarter of a histogram pass.
    """
    runs: list[tuple[int, int, int]] = []  # (page, first band, count)
    for i in indices:
        page, band = pages[i // bands], i % bands
        if runs and runs[-1][0] == page and runs[-1][1] + runs[-1][2] == band:
            runs[-1] = (page, runs[-1][1], runs[-1][2] + 1)
        else:
            runs.append((page, band, 1))
    opened: dict[int, pyvips.Image] = {}
    images = []
    for page, first, count in runs:
        if page not in opened:
            opened[page] = _load_page(origin, page)
        image = opened[page]
        whole = first == 0 and count == image.bands
        images.append(image if whole else image.extract_band(first, n=count))
    return images[0] if len(images) == 1 else images[0].bandjoin(images[1:])
