"""The generated NDPI, SCN and BIF slides open in OpenSlide 4 as their vendor's format, with
the pixels, pixel size, objective, associated images and planted strings they were written
with."""

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import openslide
import pytest
import tifffile

from tests.slides import APP_MAG, LABEL_PAPER, MPP, Planted
from tests.slides_vendors import write_leica_scn, write_ndpi, write_ventana_bif

Writer = Callable[..., np.ndarray | None]
SIZE = (2000, 1500)
WRITERS: dict[str, tuple[Writer, str, str]] = {
    "ndpi": (write_ndpi, "slide.ndpi", "hamamatsu"),
    "scn": (write_leica_scn, "slide.scn", "leica"),
    "bif": (write_ventana_bif, "slide.bif", "ventana"),
}
ASSOCIATED = {"ndpi": {"macro"}, "scn": {"macro"}, "bif": {"macro", "thumbnail"}}


class Slide(NamedTuple):
    """A generated slide: its format's short name, its file and its level-0 pixels."""

    kind: str
    path: Path
    base: np.ndarray


@pytest.fixture(scope="module", params=sorted(WRITERS))
def slide(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """Each format's slide, written once for the module."""
    writer, name, _ = WRITERS[request.param]
    path = tmp_path_factory.mktemp(request.param) / name
    base = writer(path, SIZE)
    assert base is not None
    return Slide(request.param, path, base)


def region(handle: openslide.OpenSlide, at: tuple[int, int], level: int, size: int) -> np.ndarray:
    """A square of the slide's RGB pixels, its corner given in level-0 coordinates."""
    return np.asarray(handle.read_region(at, level, (size, size)).convert("RGB")).astype(int)


def assert_close(actual: np.ndarray, expected: np.ndarray, mean: float = 2) -> None:
    """Pixels equal within what quality-90 JPEG loses."""
    difference = np.abs(actual - expected.astype(int))
    assert difference.max() <= 16 and difference.mean() <= mean


def test_detected_and_opened_as_the_vendor(slide: Slide) -> None:
    vendor = WRITERS[slide.kind][2]
    assert openslide.OpenSlide.detect_format(slide.path) == vendor
    with openslide.OpenSlide(slide.path) as handle:
        assert handle.properties[openslide.PROPERTY_NAME_VENDOR] == vendor


def test_tifffile_sees_the_vendor(slide: Slide) -> None:
    """The flag plexzoom's TIFF reader sends a slide to OpenSlide by."""
    with tifffile.TiffFile(slide.path) as tif:
        assert getattr(tif, f"is_{slide.kind}")


def test_level_0_is_the_returned_pixels(slide: Slide) -> None:
    height, width = slide.base.shape[:2]
    with openslide.OpenSlide(slide.path) as handle:
        assert handle.dimensions == (width, height)
        assert handle.level_count >= 2
        for x, y in [(0, 0), (width // 2 - 128, height // 2 - 128), (width - 256, height - 256)]:
            assert_close(region(handle, (x, y), 0, 256), slide.base[y : y + 256, x : x + 256])


def test_a_reduced_level_shows_the_slide_smaller(slide: Slide) -> None:
    with openslide.OpenSlide(slide.path) as handle:
        factor = round(handle.level_downsamples[1])
        assert factor in (2, 4)
        reduced = region(handle, (0, 0), 1, 200)
    assert_close(reduced, slide.base[::factor, ::factor][:200, :200], mean=3)


def test_pixel_size_and_objective(slide: Slide) -> None:
    with openslide.OpenSlide(slide.path) as handle:
        properties = handle.properties
        assert float(properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)


def test_associated_images_show_the_label(slide: Slide) -> None:
    """The macro holds the label card, whose paper is a colour no tissue has."""
    with openslide.OpenSlide(slide.path) as handle:
        assert set(handle.associated_images) == ASSOCIATED[slide.kind]
        macro = handle.associated_images["macro"]
        assert macro.size == (900, 300)
        corner = np.asarray(macro.convert("RGB"))[2:8, 2:8].reshape(-1, 3).mean(axis=0)
    assert np.abs(corner - LABEL_PAPER).max() <= 12


def test_ndpi_carries_the_planted_strings(tmp_path: Path) -> None:
    planted = Planted()
    path = tmp_path / "planted.ndpi"
    write_ndpi(path, (1024, 1024), planted)
    with openslide.OpenSlide(path) as handle:
        assert handle.properties["hamamatsu.Reference"] == planted.filename
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        assert page.tags.valueof(65468) == planted.barcode  # NDPI_BARCODE: no OpenSlide property


def test_scn_carries_the_planted_strings(tmp_path: Path) -> None:
    planted = Planted()
    path = tmp_path / "planted.scn"
    write_leica_scn(path, (1024, 1024), planted)
    with openslide.OpenSlide(path) as handle:
        assert handle.properties["leica.barcode"] == planted.barcode
        assert handle.properties[openslide.PROPERTY_NAME_BARCODE] == planted.barcode
    with tifffile.TiffFile(path) as tif:
        # The collection's name: OpenSlide keeps the Leica XML out of its properties.
        assert f'name="{planted.filename}"' in tif.pages.first.description


def test_bif_carries_the_planted_strings(tmp_path: Path) -> None:
    planted = Planted()
    path = tmp_path / "planted.bif"
    write_ventana_bif(path, (1024, 1024), planted)
    with openslide.OpenSlide(path) as handle:
        properties = handle.properties
        assert properties["ventana.Barcode1D"] == planted.barcode
        assert properties["ventana.UserName"] == planted.user
        assert properties["ventana.SlideAnnotation"] == planted.patient
        assert properties["ventana.BaseFileName"] == planted.filename


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_without_pixels_the_same_file_is_written(tmp_path: Path, kind: str) -> None:
    """return_pixels=False (for slides too big to hold) changes only what is returned."""
    writer, name, _ = WRITERS[kind]
    held, computed = tmp_path / f"held-{name}", tmp_path / f"computed-{name}"
    assert writer(held, (1100, 1050)) is not None
    assert writer(computed, (1100, 1050), return_pixels=False) is None
    assert held.read_bytes() == computed.read_bytes()


def test_sizes_are_rounded_to_what_the_format_stores(tmp_path: Path) -> None:
    """NDPI: down to whole 8-pixel JPEG MCUs; BIF: up to whole 512-pixel tiles."""
    assert write_ndpi(tmp_path / "a.ndpi", (1030, 1027)).shape == (1024, 1024, 3)
    assert write_ventana_bif(tmp_path / "a.bif", (1030, 1027)).shape == (1536, 1536, 3)
    assert write_leica_scn(tmp_path / "a.scn", (1030, 1027)).shape == (1027, 1030, 3)
    with pytest.raises(ValueError, match="2 x 2 tiles"):
        write_ventana_bif(tmp_path / "b.bif", (1000, 500))


def test_ndpi_mcu_starts_point_past_restart_markers(tmp_path: Path) -> None:
    """Every tile's offset is one OpenSlide can trust: one per restart interval of the level,
    the first at the scan's start and the others just past a restart marker."""
    path = tmp_path / "starts.ndpi"
    write_ndpi(path, (1536, 1024))
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages[:-1]:  # the levels, not the macro
            assert isinstance(page, tifffile.TiffPage)
            strip = page.tags["StripOffsets"].value[0]
            starts = [int(start) + strip for start in page.tags.valueof(65426)]
            assert len(starts) == (page.imagewidth // page.tilewidth) * (page.imagelength // 8)
            assert data[starts[0] - 14 : starts[0] - 12] == b"\xff\xda"  # SOS, 12 bytes long
            assert all(data[s - 2] == 0xFF and 0xD0 <= data[s - 1] <= 0xD7 for s in starts[1:])
