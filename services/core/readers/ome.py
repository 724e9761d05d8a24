"""OME-XML parsing: channels, physical size and where each plane lives (2003 to current schemas)."""

from __future__ import annotations

import bisect
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from plexzoom.core.errors import UnsupportedFormat

# Channel elements: current (Pixels/Channel), 2008 (Image/LogicalChannel), 2003 (ChannelInfo).
CHANNEL_TAGS = ("Channel", "LogicalChannel", "ChannelInfo")
MICRO = "\u00b5m"
_UNIT_ALIASES = {"um": MICRO, "micron": MICRO, "microns": MICRO, "\u03bcm": MICRO, MICRO: MICRO}
_TO_NM = {"nm": 1.0, "um": 1000.0, MICRO: 1000.0, "\u03bcm": 1000.0, "pm": 0.001, "\u00c5": 0.1}
_COLOUR_WORDS = {
    "red": "#ff0000",
    "green": "#00ff00",
    "blue": "#0000ff",
    "cyan": "#00ffff",
    "magenta": "#ff00ff",
    "yellow": "#ffff00",
}


class OmeError(ValueError):
    """The OME-XML cannot be parsed or contradicts itself."""


@dataclass
class OmeChannel:
    """One OME channel element; ``samples`` > 1 when it covers several TIFF samples (RGB)."""

    name: str | None
    color: str | None
    wavelength_nm: float | None
    samples: int = 1


@dataclass
class OmeTiffData:
    """One TiffData block: ``count`` planes from ``first`` (a plane index) live at IFD ``ifd``."""

    ifd: int
    first: tuple[int, int, int]  # (c, z, t)
    count: int | None
    has_ifd: bool


@dataclass
class OmeImage:
    """The image plexzoom reads from an OME-TIFF, as its metadata describes it."""

    size_x: int
    size_y: int
    size_c: int
    size_z: int
    size_t: int
    dimension_order: str
    channels: list[OmeChannel]
    physical_size: tuple[float, float, str] | None
    tiff_data: list[OmeTiffData] = field(default_factory=list)
    ifd_base: int = 0  # first IFD when there are no TiffData blocks
    image_index: int = 0
    image_count: int = 1

    def plane_index(self, c: int, z: int, t: int, c_planes: int) -> int:
        """Index of plane (c, z, t) in DimensionOrder (the third letter varies fastest)."""
        sizes = {"C": c_planes, "Z": self.size_z, "T": self.size_t}
        coords = {"C": c, "Z": z, "T": t}
        index, stride = 0, 1
        for dim in self.dimension_order[2:]:
            index += coords[dim] * stride
            stride *= sizes[dim]
        return index

    def channel_ifds(self, c_planes: int) -> list[int | None]:
        """The IFD of each channel's plane at Z=0, T=0; None where no TiffData covers it."""
        planes = [self.plane_index(c, 0, 0, c_planes) for c in range(c_planes)]
        if not self.tiff_data:
            return [self.ifd_base + plane for plane in planes]
        total = c_planes * self.size_z * self.size_t
        blocks = sorted(
            (self.plane_index(*b.first, c_planes), _block_count(b, total), b.ifd)
            for b in self.tiff_data
        )
        starts = [start for start, _, _ in blocks]
        found: list[int | None] = []
        for plane in planes:
            # The block starting last at or before the plane; a file has one block per plane.
            k = bisect.bisect_right(starts, plane) - 1
            covering = [blocks[k]] if k >= 0 and plane < starts[k] + blocks[k][1] else blocks
            hits = [ifd + plane - start for start, n, ifd in covering if start <= plane < start + n]
            found.append(hits[0] if hits else None)
        return found


def _block_count(block: OmeTiffData, total: int) -> int:
    """PlaneCount, defaulting to every plane without an IFD attribute and to 1 with one."""
    if block.count is not None:
        return block.count
    return 1 if block.has_ifd else total


def parse_ome(xml: str) -> OmeImage:
    """Parse OME-XML and describe its largest image; refuse files that need other files."""
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise OmeError("OME-XML with a document type declaration")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise OmeError(str(exc)) from exc
    if _children(root, "BinaryOnly"):
        companion = _children(root, "BinaryOnly")[0].get("MetadataFile", "a companion file")
        raise UnsupportedFormat(
            f"This OME-TIFF keeps its metadata in another file ({companion}); upload a "
            "single-file OME-TIFF (for example exported with bfconvert or QuPath)."
        )
    images = [_parse_image(element) for element in _children(root, "Image")]
    if not images:
        raise OmeError("OME-XML without an Image")
    for index, image in enumerate(images):
        image.image_index, image.image_count = index, len(images)
        image.ifd_base = sum(_plane_count(other) for other in images[:index])
    best = max(images, key=lambda image: (image.size_x * image.size_y, -image.image_index))
    _refuse_references(root, best.image_index)
    return best


def _parse_image(image: ET.Element) -> OmeImage:
    """Read one Image element (Pixels attributes, channels, TiffData)."""
    pixels = _children(image, "Pixels")
    if not pixels:
        raise OmeError("Image without Pixels")
    px = pixels[0]
    order = px.get("DimensionOrder", "XYCZT")
    if sorted(order) != sorted("XYCZT") or not order.startswith("XY"):
        raise OmeError(f"DimensionOrder {order!r}")
    channels = [
        _channel(e) for tag in CHANNEL_TAGS for e in _children(px, tag) + _children(image, tag)
    ]
    return OmeImage(
        size_x=_int(px, "SizeX"),
        size_y=_int(px, "SizeY"),
        size_c=_int(px, "SizeC", 1),
        size_z=_int(px, "SizeZ", 1),
        size_t=_int(px, "SizeT", 1),
        dimension_order=order,
        channels=channels,
        physical_size=_physical_size(px),
        tiff_data=[_tiff_data(e) for e in _children(px, "TiffData")],
    )


def _channel(element: ET.Element) -> OmeChannel:
    """One channel's name, colour (signed 32-bit RGBA) and emission wavelength."""
    name = element.get("Name") or element.get("Fluor")
    raw_color = element.get("Color")
    color = _rgba_hex(raw_color) if raw_color else _COLOUR_WORDS.get((name or "").lower())
    wave = element.get("EmissionWavelength") or element.get("EmWave")
    unit = element.get("EmissionWavelengthUnit", "nm")
    wavelength = float(wave) * _TO_NM[unit] if wave and unit in _TO_NM else None
    return OmeChannel(name, color, wavelength, _int(element, "SamplesPerPixel", 1))


def _rgba_hex(value: str) -> str:
    """OME stores colour as a signed 32-bit RGBA integer; return "#rrggbb"."""
    rgba = int(value) & 0xFFFFFFFF
    return f"#{rgba >> 24 & 255:02x}{rgba >> 16 & 255:02x}{rgba >> 8 & 255:02x}"


def _physical_size(pixels: ET.Element) -> tuple[float, float, str] | None:
    """PhysicalSizeX/Y and unit (default µm); Y falls back to X."""
    x = pixels.get("PhysicalSizeX")
    if x is None or float(x) <= 0:
        return None
    y = pixels.get("PhysicalSizeY") or x
    unit = pixels.get("PhysicalSizeXUnit", MICRO)
    return float(x), float(y), _UNIT_ALIASES.get(unit, unit)


def _tiff_data(element: ET.Element) -> OmeTiffData:
    """One TiffData block's IFD, first (c, z, t) and plane count."""
    count = element.get("PlaneCount")
    first = (_int(element, "FirstC", 0), _int(element, "FirstZ", 0), _int(element, "FirstT", 0))
    has_ifd = element.get("IFD") is not None
    return OmeTiffData(_int(element, "IFD", 0), first, int(count) if count else None, has_ifd)


def _refuse_references(root: ET.Element, image_index: int) -> None:
    """Raise UnsupportedFormat when the image's planes live in other files (UUID differs)."""
    own = (root.get("UUID") or "").strip()
    image = _children(root, "Image")[image_index]
    names = []
    for pixels in _children(image, "Pixels"):
        for block in _children(pixels, "TiffData"):
            for uuid in _children(block, "UUID"):
                if (uuid.text or "").strip() != own:
                    names.append(uuid.get("FileName") or (uuid.text or "").strip())
    if names:
        listed = ", ".join(sorted(set(names))[:5])
        raise UnsupportedFormat(
            f"This OME-TIFF references other files ({listed}); upload a single-file OME-TIFF "
            "(for example exported with bfconvert or QuPath)."
        )


def _plane_count(image: OmeImage) -> int:
    """Number of TIFF planes an image without TiffData blocks occupies."""
    samples = image.channels[0].samples if image.channels else 1
    return max(1, image.size_c // max(1, samples)) * image.size_z * image.size_t


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    """Direct children called ``tag`` in any namespace."""
    return [child for child in element if child.tag.rsplit("}", 1)[-1] == tag]


def _int(element: ET.Element, name: str, default: int | None = None) -> int:
    """An integer attribute; missing ones take ``default`` or make the XML invalid."""
    value = element.get(name)
    if value is None:
        if default is None:
            raise OmeError(f"missing {name}")
        return default
    number = int(value)
    if number < 0:
        raise OmeError(f"negative {name}")
    return number
