"""The generated Hamamatsu VMS slide opens in OpenSlide 4 as "hamamatsu" with the right pixels,
pixel size and macro, carries the planted name where VMS files do, and converts through
plexzoom when uploaded as one zip."""

import struct
from pathlib import Path

import numpy as np
import openslide
import pytest

from plexzoom.core.readers import open_source
from tests.slides import APP_MAG, MPP, Planted, macro_pixels
from tests.slides_multifile import zip_folder
from tests.slides_vms import VMS_GRID, VMS_MCU, VMS_OPT_RECORD, check_vms_size, write_vms

SIZE = (2048, 1536)
Slide = tuple[Path, np.ndarray]


@pytest.fixture(scope="module")
def vms(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """A VMS slide (the .vms path) and its base pixels."""
    return write_vms(tmp_path_factory.mktemp("vms") / "scan", SIZE)


def rgb(
    slide: openslide.OpenSlide, at: tuple[int, int], level: int, size: tuple[int, int]
) -> np.ndarray:
    """A region's RGB pixels as ints, its corner in level-0 coordinates."""
    return np.asarray(slide.read_region(at, level, size).convert("RGB")).astype(int)


def test_vms_files(vms: Slide) -> None:
    path, _ = vms
    stem = f"{Planted().filename} - 2026-03-14 09.26.53"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [
            "SLIDE.vms",
            f"{stem}.jpg",
            f"{stem}(1,0).jpg",
            f"{stem}(0,1).jpg",
            f"{stem}(1,1).jpg",
            f"{stem}_map2.jpg",
            f"{stem}.opt",
            f"{stem}_macro.jpg",
        ]
    )
    assert path.read_bytes().startswith(b"[Virtual Microscope Specimen]\r\n")


def test_vms_opens_as_hamamatsu(vms: Slide) -> None:
    path, base = vms
    assert openslide.OpenSlide.detect_format(path) == "hamamatsu"
    with openslide.OpenSlide(path) as slide:
        props = slide.properties
        assert props[openslide.PROPERTY_NAME_VENDOR] == "hamamatsu"
        # Level 0, its 1/2, 1/4 and 1/8 by DCT scaling, then the 1/16 map and its scalings.
        assert slide.level_dimensions == tuple((SIZE[0] // 2**n, SIZE[1] // 2**n) for n in range(8))
        assert (
            props["openslide.level[0].tile-width"],
            props["openslide.level[0].tile-height"],
        ) == (
            "256",
            "8",
        )
        assert float(props[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(props[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert props[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)
        assert props["hamamatsu.PhysicalWidth"] == str(round(SIZE[0] * MPP * 1000))
        whole = rgb(slide, (0, 0), 0, SIZE)
        assert np.abs(whole - base).mean() < 4
        # Across the seams of the 2 x 2 JPEG grid.
        seam = rgb(slide, (1000, 740), 0, (50, 60))
        assert np.abs(seam - base[740:800, 1000:1050]).mean() < 4
        for level in range(1, 5):
            factor = 2**level
            width, height = slide.level_dimensions[level]
            pixels = rgb(slide, (0, 0), level, (width, height))
            assert np.abs(pixels - base[::factor, ::factor]).mean() < 4, level


def test_vms_macro_and_planted_name(vms: Slide) -> None:
    path, base = vms
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        assert set(slide.associated_images) == {"macro"}
        macro = np.asarray(slide.associated_images["macro"].convert("RGB")).astype(int)
        props = dict(slide.properties)
    expected = macro_pixels(planted, base).astype(int)
    assert macro.shape == expected.shape
    assert np.abs(macro - expected).mean() < 4
    # The label (patient, barcode, user) is only on the macro; the scan's name is in the names
    # of the files the key file lists.
    for key in ("ImageFile", "ImageFile(1,1)", "MapFile", "OptimisationFile", "MacroImage"):
        assert planted.filename in props[f"hamamatsu.{key}"], key
    for secret in (planted.patient, planted.barcode, planted.user):
        assert not any(secret in value for value in props.values()), secret


def test_vms_optimisation_file(vms: Slide) -> None:
    """One record per MCU row of each image JPEG but the very last, each just past a restart
    marker (row 0: the scan's start), as OpenSlide checks before using one."""
    path, _ = vms
    folder = path.parent
    columns, rows = VMS_GRID
    rows_per_jpeg = SIZE[1] // rows // VMS_MCU
    opt = next(folder.glob("*.opt")).read_bytes()
    assert len(opt) == (columns * rows * rows_per_jpeg - 1) * VMS_OPT_RECORD
    records = [struct.unpack_from("<Q", opt, at)[0] for at in range(0, len(opt), VMS_OPT_RECORD)]
    stem = f"{Planted().filename} - 2026-03-14 09.26.53"
    for index, at in enumerate(("", "(1,0)", "(0,1)", "(1,1)")):
        data = (folder / f"{stem}{at}.jpg").read_bytes()
        starts = records[index * rows_per_jpeg : (index + 1) * rows_per_jpeg]
        sos = data.index(b"\xff\xda")
        assert starts[0] == sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
        for offset in starts[1:]:
            assert data[offset - 2] == 0xFF and 0xD0 <= data[offset - 1] <= 0xD7


def test_vms_size_must_be_whole_tiles() -> None:
    with pytest.raises(ValueError, match="whole"):
        check_vms_size((2000, 1500))


def test_vms_zip_converts(vms: Slide, tmp_path: Path) -> None:
    path, base = vms
    upload = zip_folder(path.parent, tmp_path / "slide")
    with open_source(upload) as source:
        assert source.notes["slide_vendor"] == "hamamatsu"
        assert source.physical_size is not None
        width, height, unit = source.physical_size
        assert width == pytest.approx(MPP)
        assert height == pytest.approx(MPP)
        assert unit == "µm"
        pixels = source.picture().numpy()
    assert pixels.shape == base.shape
    assert np.abs(pixels.astype(int) - base).mean() < 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slide"]
