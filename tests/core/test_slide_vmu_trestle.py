"""The generated Hamamatsu VMU and Trestle slides open in OpenSlide 4 as their vendor's format
with the right levels, pixels, pixel size and macro, and carry the planted strings only where
those formats do."""

from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile

from tests.slides import MPP, Planted, macro_pixels
from tests.slides_vmu_trestle import (
    NGR_HEADER,
    TRESTLE_FACTORS,
    TRESTLE_LENS,
    TRESTLE_TILE,
    VMU_COLUMN,
    VMU_LENS,
    VMU_MAP_FACTOR,
    check_vmu_size,
    write_trestle,
    write_vmu,
)

SIZE = (2048, 1536)
Slide = tuple[Path, np.ndarray]


@pytest.fixture(scope="module")
def vmu(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """A VMU slide (the .vmu path) and its base pixels."""
    return write_vmu(tmp_path_factory.mktemp("vmu") / "scan", SIZE)


@pytest.fixture(scope="module")
def trestle(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """A Trestle slide (the .tif path) and its base pixels."""
    return write_trestle(tmp_path_factory.mktemp("trestle") / "scan", SIZE)


def rgb(slide: openslide.OpenSlide, level: int) -> np.ndarray:
    """A whole level's RGB pixels as ints."""
    size = slide.level_dimensions[level]
    return np.asarray(slide.read_region((0, 0), level, size).convert("RGB")).astype(int)


def check_macro(slide: openslide.OpenSlide, base: np.ndarray) -> None:
    """The slide's only associated image is the macro, matching macro_pixels."""
    assert set(slide.associated_images) == {"macro"}
    macro = np.asarray(slide.associated_images["macro"].convert("RGB")).astype(int)
    expected = macro_pixels(Planted(), base).astype(int)
    assert macro.shape == expected.shape
    assert np.abs(macro - expected).mean() < 4


def test_vmu_files(vmu: Slide) -> None:
    path, _ = vmu
    stem = f"{Planted().filename} - 2026-03-14 09.26.53"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["SLIDE.vmu", f"{stem}.ngr", f"{stem}_map.ngr", f"{stem}_macro.jpg"]
    )
    assert path.read_bytes().startswith(b"[Uncompressed Virtual Microscope Specimen]\r\n")
    ngr = (path.parent / f"{stem}.ngr").read_bytes()
    magic, _, width, height, column, _, start = NGR_HEADER.unpack_from(ngr)
    assert (magic, width, height, column) == (b"GN", *SIZE, VMU_COLUMN)
    assert len(ngr) == start + SIZE[0] * SIZE[1] * 6


def test_vmu_opens_as_hamamatsu(vmu: Slide) -> None:
    path, base = vmu
    assert openslide.OpenSlide.detect_format(path) == "hamamatsu"
    with openslide.OpenSlide(path) as slide:
        props = slide.properties
        assert props[openslide.PROPERTY_NAME_VENDOR] == "hamamatsu"
        # Level 0 and the map; NGR levels get no DCT-scaled levels.
        map_size = (SIZE[0] // VMU_MAP_FACTOR, SIZE[1] // VMU_MAP_FACTOR)
        assert slide.level_dimensions == (SIZE, map_size)
        assert (
            props["openslide.level[0].tile-width"],
            props["openslide.level[0].tile-height"],
        ) == (
            str(VMU_COLUMN),
            "64",
        )
        assert float(props[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(props[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert props[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(VMU_LENS)
        assert np.abs(rgb(slide, 0) - base).mean() < 4
        assert np.abs(rgb(slide, 1) - base[::VMU_MAP_FACTOR, ::VMU_MAP_FACTOR]).mean() < 4
        # Across a column boundary and a 64-row tile boundary.
        seam = np.asarray(slide.read_region((240, 50), 0, (40, 30)).convert("RGB")).astype(int)
        assert np.abs(seam - base[50:80, 240:280]).mean() < 4


def test_vmu_macro_and_planted_name(vmu: Slide) -> None:
    path, base = vmu
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        check_macro(slide, base)
        props = dict(slide.properties)
    for key in ("ImageFile", "MapFile", "MacroImage"):
        assert planted.filename in props[f"hamamatsu.{key}"], key
    for secret in (planted.patient, planted.barcode, planted.user):
        assert not any(secret in value for value in props.values()), secret


def test_vmu_size_must_be_whole_columns() -> None:
    with pytest.raises(ValueError, match="whole"):
        check_vmu_size((2000, 1536))


def test_trestle_file(trestle: Slide) -> None:
    path, _ = trestle
    planted = Planted()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [f"{planted.filename}.tif", f"{planted.filename}.Full"]
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].software.startswith("MedScan")
        assert all(page.is_tiled for page in tif.pages)
        assert len(tif.pages) == len(TRESTLE_FACTORS)


def test_trestle_opens_as_trestle(trestle: Slide) -> None:
    path, base = trestle
    assert openslide.OpenSlide.detect_format(path) == "trestle"
    with openslide.OpenSlide(path) as slide:
        props = slide.properties
        assert props[openslide.PROPERTY_NAME_VENDOR] == "trestle"
        assert slide.level_dimensions == tuple(
            (-(-SIZE[0] // f), -(-SIZE[1] // f)) for f in TRESTLE_FACTORS
        )
        assert props["openslide.level[0].tile-width"] == str(TRESTLE_TILE)
        assert float(props[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(props[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert props[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(TRESTLE_LENS)
        assert props[openslide.PROPERTY_NAME_BACKGROUND_COLOR] == "F5F5F5"
        assert props["trestle.OverlapsXY"] == " ".join(["0 0"] * len(TRESTLE_FACTORS))
        for level, factor in enumerate(TRESTLE_FACTORS):
            assert np.abs(rgb(slide, level) - base[::factor, ::factor]).mean() < 4, level


def test_trestle_macro_and_no_planted_property(trestle: Slide) -> None:
    path, base = trestle
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        check_macro(slide, base)
        values = list(slide.properties.values())
    for secret in (planted.patient, planted.barcode, planted.user, planted.filename):
        assert not any(secret in value for value in values), secret


def test_trestle_without_full_has_no_macro(tmp_path: Path) -> None:
    path, _ = write_trestle(tmp_path / "scan", (512, 384))
    path.with_suffix(".Full").unlink()
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "trestle"
        assert not slide.associated_images
