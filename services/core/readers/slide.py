"""Whole-slide scans in TIFF containers (Aperio SVS, Philips TIFF, ...): what OpenSlide knows.

The pixels of these slides are read as any TIFF (libvips, the fast path); OpenSlide 4
(``openslide-python`` with ``openslide-bin``) adds what only a slide driver knows: the vendor,
microns per pixel and the objective power. Only those are taken from its properties: the rest
(user names, barcodes, file names, dates, the label and macro images) can identify a person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
# tifffile's flags of the TIFF-based formats OpenSlide has a vendor driver for.
SLIDE_KINDS = ("svs", "philips", "ndpi", "scn", "bif")


@dataclass(frozen=True)
class SlideInfo:
    """The non-identifying facts a slide driver reports."""

    vendor: str
    mpp: tuple[float, float] | None  # microns per pixel, x and y
    objective_power: float | None

    def notes(self) -> dict[str, Any]:
        """What goes into the record's notes."""
        found: dict[str, Any] = {"slide_vendor": self.vendor}
        if self.objective_power is not None:
            found["objective_power"] = self.objective_power
        return found


def slide_info(path: Path) -> SlideInfo | None:
    """The vendor, pixel size and objective power of a slide; None for other files (and
    "generic-tiff": a tiled TIFF OpenSlide reads without a vendor's metadata)."""
    try:
        import openslide  # a native library: loaded on first use, where slides are read

        vendor = openslide.OpenSlide.detect_format(str(path))
        if vendor is None or vendor == "generic-tiff":
            return None
        with openslide.OpenSlide(str(path)) as slide:
            properties = dict(slide.properties)
    except (ImportError, OSError, ValueError) as exc:  # OpenSlideError is an OSError's kin
        log.info("no slide metadata: %s", type(exc).__name__)
        return None
    except Exception as exc:
        log.info("no slide metadata: %s", type(exc).__name__)
        return None
    mpp_x = _positive(properties.get("openslide.mpp-x"))
    mpp_y = _positive(properties.get("openslide.mpp-y"))
    mpp = (mpp_x, mpp_y or mpp_x) if mpp_x is not None else None
    return SlideInfo(vendor, mpp, _positive(properties.get("openslide.objective-power")))


def _positive(value: str | None) -> float | None:
    """A positive finite number from a property, else None."""
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 < number < 1e6 else None
