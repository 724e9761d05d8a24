"""What a slide driver knows about a whole-slide scan, and nothing that identifies a person.

OpenSlide 4 (``openslide-python`` with ``openslide-bin``) reports the vendor, microns per
pixel and the objective power; only those, and the year of the scan, are taken from its
properties. The rest (user names, barcodes, file and accession names, patient and study tags,
full dates, the label and macro images) can identify a person and is never read out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# tifffile's flags of the TIFF-based formats OpenSlide has a vendor driver for.
SLIDE_KINDS = ("svs", "philips", "ndpi", "scn", "bif")
# Properties that may hold the scan date, in the order they are trusted.
_DATE_PROPERTIES = (
    "aperio.Date",
    "dicom.AcquisitionDateTime",
    "dicom.ContentDate",
    "dicom.StudyDate",
    "leica.creation-date",
    "mirax.GENERAL.SLIDE_CREATIONDATETIME",
    "philips.DICOM_ACQUISITION_DATETIME",
    "tiff.DateTime",
)
# A year on its own, or opening a DICOM date (YYYYMMDD).
_YEAR = re.compile(r"^(19[7-9]\d|20\d\d)(?=\d{4})|(?<!\d)(19[7-9]\d|20\d\d)(?!\d)")
_APERIO_DATE = re.compile(r"^\d\d/\d\d/(\d\d)$")  # MM/DD/YY


@dataclass(frozen=True)
class SlideInfo:
    """The non-identifying facts a slide driver reports."""

    vendor: str
    mpp: tuple[float, float] | None  # microns per pixel, x and y
    objective_power: float | None
    scan_year: int | None = None
    associated: tuple[str, ...] = ()  # names of the label, macro, ... images (never stored)

    def notes(self) -> dict[str, Any]:
        """What goes into the record's notes."""
        found: dict[str, Any] = {"slide_vendor": self.vendor}
        if self.objective_power is not None:
            found["objective_power"] = self.objective_power
        if self.scan_year is not None:
            found["scan_year"] = self.scan_year
        if self.associated:
            found["slide_images_withheld"] = list(self.associated)
        return found


def slide_info(path: Path) -> SlideInfo | None:
    """The facts of a slide in a TIFF container; None for other files (and "generic-tiff": a
    tiled TIFF OpenSlide reads without a vendor's metadata)."""
    try:
        import openslide  # a native library: loaded on first use, where slides are read

        vendor = openslide.OpenSlide.detect_format(str(path))
        if vendor is None or vendor == "generic-tiff":
            return None
        with openslide.OpenSlide(str(path)) as slide:
            return slide_facts(slide)
    except Exception as exc:  # OpenSlideError, a missing library, a damaged file
        log.info("no slide metadata: %s", type(exc).__name__)
        return None


def slide_facts(slide: Any) -> SlideInfo:
    """The non-identifying facts of an open ``openslide.OpenSlide``."""
    properties: Mapping[str, str] = slide.properties
    mpp_x = _positive(properties.get("openslide.mpp-x"))
    mpp_y = _positive(properties.get("openslide.mpp-y"))
    return SlideInfo(
        vendor=str(properties.get("openslide.vendor", "unknown")),
        mpp=(mpp_x, mpp_y or mpp_x) if mpp_x is not None else None,
        objective_power=_positive(properties.get("openslide.objective-power")),
        scan_year=scan_year(properties),
        associated=tuple(sorted(slide.associated_images.keys())),
    )


def scan_year(properties: Mapping[str, str]) -> int | None:
    """The year of the scan, from the first date property that holds one (never the day)."""
    for name in _DATE_PROPERTIES:
        text = (properties.get(name) or "").strip()
        aperio = _APERIO_DATE.match(text)
        if aperio:
            return 2000 + int(aperio.group(1))
        year = _YEAR.search(text)
        if year:
            return int(year.group(1) or year.group(2))
    return None


def _positive(value: str | None) -> float | None:
    """A positive finite number from a property, else None."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 < number < 1e6 else None


def slide_images(path: Path) -> dict[str, bytes]:
    """A slide's associated images (label, macro, thumbnail) as PNG files, by OpenSlide's name.

    Only for ``PLEXZOOM_SHOW_SLIDE_LABELS``: the label usually shows who the slide belongs to.
    """
    import numpy as np
    import openslide
    import pyvips

    found: dict[str, bytes] = {}
    with openslide.OpenSlide(str(path)) as slide:
        for name, picture in slide.associated_images.items():
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,30}", name):
                continue
            pixels = np.asarray(picture.convert("RGB"))
            found[name] = pyvips.Image.new_from_array(pixels).pngsave_buffer(keep="none")
    return found
