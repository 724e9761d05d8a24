"""The generated whole-slide fixtures open in OpenSlide as their vendor's format."""

from pathlib import Path

import numpy as np
import openslide
import pytest

from tests.slides import (
    APP_MAG,
    MPP,
    Planted,
    write_aperio_svs,
    write_generic_tiff,
    write_philips_tiff,
)


def region(slide: openslide.OpenSlide, at: tuple[int, int], level: int, size: int) -> np.ndarray:
    """A square of the slide's RGB pixels, its corner given in level-0 coordinates."""
    return np.asarray(slide.read_region(at, level, (size, size)).convert("RGB")).astype(int)


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """Pixels equal within what quality-90 JPEG loses."""
    difference = np.abs(actual - expected.astype(int))
    assert difference.max() <= 16 and difference.mean() <= 2


@pytest.fixture(scope="module")
def svs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """An Aperio SVS and its base pixels."""
    path = tmp_path_factory.mktemp("slides") / "slide.svs"
    return path, write_aperio_svs(path)


def test_aperio_svs_opens_as_aperio(svs: tuple[Path, np.ndarray]) -> None:
    path, _ = svs
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "aperio"
        assert slide.level_count == 3
        assert slide.level_dimensions == ((4000, 3000), (1000, 750), (250, 188))
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)
        assert set(slide.associated_images) == {"label", "macro", "thumbnail"}
        assert slide.associated_images["label"].size == (360, 300)
        assert slide.associated_images["macro"].size == (900, 300)


def test_aperio_svs_carries_the_planted_strings(svs: tuple[Path, np.ndarray]) -> None:
    path, _ = svs
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        assert slide.properties["aperio.Filename"] == planted.filename
        assert slide.properties["aperio.User"] == planted.user
        assert slide.properties["aperio.Barcode"] == planted.barcode
        assert slide.properties["aperio.Patient"] == planted.patient
        label = np.asarray(slide.associated_images["label"].convert("L"))
    # The label's rendered text leaves dark ink on the white card.
    assert (label < 100).sum() > 500


@pytest.mark.parametrize(("at", "level"), [((1234, 567), 0), ((3900, 2900), 0), ((640, 320), 1)])
def test_aperio_svs_pixels(svs: tuple[Path, np.ndarray], at: tuple[int, int], level: int) -> None:
    path, base = svs
    factor = 4**level
    with openslide.OpenSlide(path) as slide:
        pixels = region(slide, at, level, 100)
    (x, y), span = at, 100 * factor
    expected = base[y : y + span : factor, x : x + span : factor]
    assert_close(pixels[: expected.shape[0], : expected.shape[1]], expected)


def test_generic_tiff(tmp_path: Path) -> None:
    path = tmp_path / "slide.tif"
    base = write_generic_tiff(path)
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "generic-tiff"
        assert slide.level_dimensions == ((2000, 1500), (1000, 750), (500, 375))
        assert_close(region(slide, (500, 700), 0, 100), base[700:800, 500:600])


def test_philips_tiff(tmp_path: Path) -> None:
    path = tmp_path / "slide.tiff"
    base = write_philips_tiff(path)
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "philips"
        assert slide.level_dimensions == ((2048, 1536), (1024, 768), (512, 384))
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)
        assert slide.properties[openslide.PROPERTY_NAME_BARCODE] == planted.barcode
        assert slide.properties["philips.DICOM_PATIENT_NAME"] == planted.patient
        assert {name: image.size for name, image in slide.associated_images.items()} == {
            "label": (360, 300),
            "macro": (900, 300),
        }
        assert_close(region(slide, (1234, 567), 0, 100), base[567:667, 1234:1334])
        assert_close(region(slide, (800, 400), 2, 100), base[400:800:4, 800:1200:4])
