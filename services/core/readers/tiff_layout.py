"""Which TIFF pages hold the channels: OME-XML, ImageJ hyperstacks, or equal-size pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tifffile

from plexzoom.core.errors import CorruptImage, UnsupportedFormat
from plexzoom.core.readers.base import ChannelInfo, ReadOptions, check_channel_count
from plexzoom.core.readers.ome import MICRO, OmeChannel, OmeError, OmeImage, parse_ome

# TIFF ResolutionUnit -> micrometres per unit (1 = none, 2 = inch, 3 = cm; 4/5 are tifffile's).
_MICRONS_PER_UNIT = {2: 25400.0, 3: 10000.0, 4: 1000.0, 5: 1.0}
# Coarser than this is a print or screen resolution (72 dpi), not a pixel size.
_MAX_PLAUSIBLE_MICRONS = 50.0
_IMAGEJ_UNITS = {"micron": MICRO, "microns": MICRO, "um": MICRO, "\\u00B5m": MICRO, MICRO: MICRO}


@dataclass
class TiffPlan:
    """The pages that hold the channels (one per channel group) and what metadata says."""

    pages: list[int]
    photometric: int
    alpha: bool = False
    channels: list[ChannelInfo] = field(default_factory=list)  # empty when metadata names none
    physical_size: tuple[float, float, str] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def tiff_page(tif: tifffile.TiffFile, index: int) -> tifffile.TiffPage:
    """Page ``index`` of the main IFD chain as a full TiffPage."""
    page = tif.pages[index]
    return page if isinstance(page, tifffile.TiffPage) else page.aspage()


def plan_tiff(tif: tifffile.TiffFile, options: ReadOptions) -> TiffPlan:
    """Choose the channel pages of an open TIFF."""
    if tif.is_ome:
        try:
            return _ome_plan(tif, parse_ome(tif.pages.first.description), options)
        except OmeError as exc:
            plan = _plain_plan(tif, options)
            plan.notes["ome_xml"] = f"unreadable ({exc}); read as a plain TIFF"
            return plan
    return _plain_plan(tif, options)


def _ome_plan(tif: tifffile.TiffFile, ome: OmeImage, options: ReadOptions) -> TiffPlan:
    """Channels at Z=0, T=0 of the OME image, mapped to IFDs through DimensionOrder/TiffData."""
    check_channel_count(ome.size_c, options)
    first = _checked_ifd(tif, ome, ome.channel_ifds(1)[0], 0)
    samples = tiff_page(tif, first).samplesperpixel
    c_planes = max(1, ome.size_c // samples) if samples > 1 else ome.size_c
    ifds = ome.channel_ifds(c_planes)
    pages = [_checked_ifd(tif, ome, ifd, c) for c, ifd in enumerate(ifds)]
    plan = _page_plan(tif, pages)
    plan.channels = _ome_channels(ome.channels, c_planes, samples)
    plan.physical_size = ome.physical_size
    if ome.size_z > 1 or ome.size_t > 1:
        plan.notes.update(z=0, t=0, z_planes=ome.size_z, t_points=ome.size_t)
    if ome.image_count > 1:
        plan.notes.update(ome_image=ome.image_index, ome_images=ome.image_count)
    return plan


def _checked_ifd(tif: tifffile.TiffFile, ome: OmeImage, ifd: int | None, c: int) -> int:
    """The IFD of channel ``c``, checked against the file's pages."""
    if ifd is None or ifd >= len(tif.pages):
        raise CorruptImage(
            f"The OME metadata places channel {c + 1} on a page this file does not have; the "
            "file may be truncated or its metadata edited. Export it again."
        )
    page = tiff_page(tif, ifd)
    if (page.imagewidth, page.imagelength) != (ome.size_x, ome.size_y):
        raise CorruptImage(
            f"The OME metadata says {ome.size_x} x {ome.size_y} pixels but page {ifd} has "
            f"{page.imagewidth} x {page.imagelength}. Export the image again."
        )
    return ifd


def _ome_channels(elements: list[OmeChannel], c_planes: int, samples: int) -> list[ChannelInfo]:
    """One ChannelInfo per sample, from per-sample or per-plane channel elements."""
    if len(elements) == c_planes * samples:
        per_sample = elements
    elif len(elements) == c_planes:
        per_sample = [element for element in elements for _ in range(samples)]
    else:
        return []
    infos = []
    for i, element in enumerate(per_sample):
        name = element.name or f"Channel {i + 1}"
        if element.name and len(per_sample) > len(elements):
            name = f"{element.name} {i % samples + 1}"
        infos.append(ChannelInfo(i, name, element.color, element.wavelength_nm))
    return infos


def _plain_plan(tif: tifffile.TiffFile, options: ReadOptions) -> TiffPlan:
    """Equal-size pages are channels; pages of other sizes are thumbnails, labels or macros."""
    pages = [tiff_page(tif, i) for i in range(len(tif.pages))]
    keys = [(p.imagewidth, p.imagelength, p.samplesperpixel, p.dtype) for p in pages]
    best = max(range(len(pages)), key=lambda i: (keys[i][0] * keys[i][1], -i))
    same_size = [i for i, key in enumerate(keys) if key == keys[best]]
    notes: dict[str, Any] = {}
    ignored = sorted(set(range(len(pages))) - set(same_size))
    if ignored:
        notes["pages_ignored"] = ignored
    chosen = same_size
    if tif.is_imagej:
        chosen = _imagej_pages(tif.imagej_metadata or {}, same_size, notes)
    check_channel_count(len(chosen), options)
    plan = _page_plan(tif, chosen)
    plan.notes.update(notes)
    plan.physical_size = _resolution(pages[best], (tif.imagej_metadata or {}).get("unit"))
    names = [pages[i].tags.valueof(285) for i in chosen]  # PageName
    if all(isinstance(name, str) and name for name in names) and len(set(names)) == len(names):
        plan.channels = [ChannelInfo(i, str(name), None) for i, name in enumerate(names)]
    if tif.is_imagej:
        _imagej_colours(tif.imagej_metadata or {}, plan)
    return plan


def _imagej_pages(meta: dict[str, Any], chosen: list[int], notes: dict[str, Any]) -> list[int]:
    """ImageJ hyperstacks store planes C fastest, then Z, then T: the first C pages."""
    c, z, t = (int(meta.get(key, 1)) for key in ("channels", "slices", "frames"))
    if c * z * t <= 1:
        return chosen
    if len(chosen) < c:
        raise UnsupportedFormat(
            "This ImageJ TIFF stores its planes without TIFF pages (a file over 4 GB); save it "
            "as OME-TIFF (Bio-Formats exporter) and upload that."
        )
    if z > 1 or t > 1:
        notes.update(z=0, t=0, z_planes=z, t_points=t)
    return chosen[:c]


def _imagej_colours(meta: dict[str, Any], plan: TiffPlan) -> None:
    """ImageJ keeps a channel's colour as the top entry of its lookup table."""
    luts = meta.get("LUTs") or []
    if len(luts) != len(plan.pages):
        return
    if not plan.channels:
        plan.channels = [ChannelInfo(i, f"Channel {i + 1}", None) for i in range(len(luts))]
    for info, lut in zip(plan.channels, luts, strict=True):
        red, green, blue = (int(v) for v in lut[:, -1])
        info.color = f"#{red:02x}{green:02x}{blue:02x}"


def _page_plan(tif: tifffile.TiffFile, pages: list[int]) -> TiffPlan:
    """A plan for ``pages``; refuses pixel types libvips cannot hold."""
    page = tiff_page(tif, pages[0])
    dtype = page.dtype
    if page.bitspersample == 1 and int(page.photometric) in (0, 1):
        # Bilevel (fax, scanned documents): libvips reads it as 0/255, white where the file
        # means white (MINISWHITE or MINISBLACK).
        return TiffPlan(pages=pages, photometric=int(page.photometric), notes={"bilevel": True})
    if dtype is None or dtype.kind not in "uif" or dtype.itemsize > (8 if dtype.kind == "f" else 4):
        raise UnsupportedFormat(
            f"This TIFF stores {page.bitspersample}-bit samples of a kind plexzoom cannot read; "
            "save it as 8-, 16- or 32-bit integers or as 32/64-bit floating point."
        )
    alpha = bool(page.extrasamples) and page.extrasamples[-1] in (1, 2)
    return TiffPlan(pages=pages, photometric=int(page.photometric), alpha=alpha)


def _resolution(page: tifffile.TiffPage, imagej_unit: Any) -> tuple[float, float, str] | None:
    """Pixel size from XResolution/YResolution (pixels per unit), where it is plausible."""
    if "XResolution" not in page.tags:
        return None
    x_res, y_res = page.resolution
    unit = int(page.resolutionunit)
    if x_res <= 0 or y_res <= 0:
        return None
    if unit == 1 and isinstance(imagej_unit, str) and imagej_unit in _IMAGEJ_UNITS:
        return 1.0 / x_res, 1.0 / y_res, _IMAGEJ_UNITS[imagej_unit]
    scale = _MICRONS_PER_UNIT.get(unit)
    if scale is None or scale / x_res > _MAX_PLAUSIBLE_MICRONS:
        return None
    return scale / x_res, scale / y_res, MICRO
