"""The generated multi-file slides (3DHISTECH MIRAX, DICOM WSI) open in OpenSlide 4 as their
vendor, carry the planted strings, and still open after a round trip through a zip."""

import zipfile
from pathlib import Path

import numpy as np
import openslide
import pytest

from tests import slides_multifile
from tests.slides import APP_MAG, LABEL_PAPER, MPP, Planted, slide_pixels
from tests.slides_multifile import (
    PATIENT_BIRTH_DATE,
    PATIENT_ID,
    write_dicom_wsi,
    write_mrxs,
    zip_folder,
)

SIZE = (2000, 1500)
Slide = tuple[Path, np.ndarray]


def region(slide: openslide.OpenSlide, at: tuple[int, int], level: int, size: int) -> np.ndarray:
    """A square of the slide's RGB pixels, its corner given in level-0 coordinates."""
    return np.asarray(slide.read_region(at, level, (size, size)).convert("RGB")).astype(int)


def assert_matches(
    slide: openslide.OpenSlide, base: np.ndarray, at: tuple[int, int], level: int
) -> None:
    """The slide's pixels at a level-0 corner and level equal the base subsampled by the level's
    downsample, within what quality-90 JPEG loses."""
    factor = round(slide.level_downsamples[level])
    (x, y), span = at, 100 * factor
    expected = base[y : y + span : factor, x : x + span : factor].astype(int)
    actual = region(slide, at, level, 100)[: expected.shape[0], : expected.shape[1]]
    assert expected.size > 0
    assert np.abs(actual - expected).mean() < 4


def ink(image: np.ndarray) -> int:
    """How many dark pixels (rendered text) an associated image has."""
    return int((image.max(axis=-1) < 100).sum())


def on_label_paper(image: np.ndarray) -> float:
    """The share of an image's pixels that have the label card's paper colour."""
    return float((np.abs(image.astype(int) - LABEL_PAPER).max(axis=-1) < 40).mean())


@pytest.fixture(scope="module")
def mrxs(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """A MIRAX slide and its base pixels."""
    path, base = write_mrxs(tmp_path_factory.mktemp("mrxs"), SIZE)
    assert base is not None
    return path, base


@pytest.fixture(scope="module")
def dicom(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """A DICOM WSI series, the path of its level-0 file and its base pixels."""
    path, base = write_dicom_wsi(tmp_path_factory.mktemp("dicom"), SIZE)
    assert base is not None
    return path, base


def test_mrxs_opens_as_mirax(mrxs: Slide) -> None:
    path, _ = mrxs
    assert sorted(p.name for p in (path.parent / "SLIDE").iterdir()) == [
        "Data0000.dat", "Index.dat", "Slidedat.ini"
    ]  # fmt: skip
    assert openslide.OpenSlide.detect_format(path) == "mirax"
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "mirax"
        assert slide.level_dimensions == ((2000, 1500), (1000, 750), (500, 375))
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)
        assert set(slide.associated_images) == {"label", "macro", "thumbnail"}
        assert slide.associated_images["label"].size == (360, 300)
        assert slide.associated_images["macro"].size == (900, 300)


@pytest.mark.parametrize(("at", "level"), [((1234, 567), 0), ((1900, 1400), 0), ((640, 320), 1)])
def test_mrxs_pixels(mrxs: Slide, at: tuple[int, int], level: int) -> None:
    path, base = mrxs
    with openslide.OpenSlide(path) as slide:
        assert_matches(slide, base, at, level)


def test_mrxs_carries_the_planted_strings(mrxs: Slide) -> None:
    path, _ = mrxs
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        assert slide.properties["mirax.GENERAL.SLIDE_NAME"] == planted.filename
        assert slide.properties["mirax.GENERAL.PROJECT_NAME"] == planted.barcode
        assert slide.properties["mirax.GENERAL.SLIDE_CREATIONDATETIME"] == "14/03/2026 09:26:53"
        label = np.asarray(slide.associated_images["label"].convert("RGB"))
        macro = np.asarray(slide.associated_images["macro"].convert("RGB"))
    assert ink(label) > 500 and ink(macro[:, :360]) > 500
    assert on_label_paper(label) > 0.5 and on_label_paper(macro[:, :360]) > 0.5


def test_mrxs_sides_must_be_whole_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1999"):
        write_mrxs(tmp_path, (1999, 1500))


def test_mrxs_without_pixels_spread_over_data_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slides_multifile, "MIRAX_DATA_FILE_LIMIT", 100_000)
    # 2000 x 1200 is cut into camera images of 500 x 400 px.
    path, pixels = write_mrxs(tmp_path, (2000, 1200), name="other", return_pixels=False)
    assert pixels is None
    assert len(list((tmp_path / "other").glob("Data*.dat"))) > 2
    with openslide.OpenSlide(path) as slide:
        assert slide.level_dimensions == ((2000, 1200), (1000, 600), (500, 300))
        assert slide.properties["openslide.level[0].tile-height"] == "400"
        base = slide_pixels(2000, 1200)
        for at, level in (((1100, 700), 0), ((1900, 1100), 0), ((600, 400), 2)):
            assert_matches(slide, base, at, level)


def test_dicom_opens_as_dicom(dicom: Slide) -> None:
    path, _ = dicom
    assert openslide.OpenSlide.detect_format(path) == "dicom"
    with openslide.OpenSlide(path) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == "dicom"
        assert slide.level_dimensions == ((2000, 1500), (1000, 750), (500, 375), (250, 188))
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(slide.properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert slide.properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)
        assert set(slide.associated_images) == {"label", "macro"}
        assert slide.associated_images["label"].size == (360, 300)
        assert slide.associated_images["macro"].size == (900, 300)


@pytest.mark.parametrize(("at", "level"), [((1234, 567), 0), ((1900, 1400), 0), ((640, 320), 1)])
def test_dicom_pixels(dicom: Slide, at: tuple[int, int], level: int) -> None:
    path, base = dicom
    with openslide.OpenSlide(path) as slide:
        assert_matches(slide, base, at, level)


def test_dicom_carries_the_planted_strings(dicom: Slide) -> None:
    path, _ = dicom
    planted = Planted()
    with openslide.OpenSlide(path) as slide:
        properties = dict(slide.properties)
        label = np.asarray(slide.associated_images["label"].convert("RGB"))
    assert properties["dicom.PatientName"] == planted.patient
    assert properties["dicom.PatientID"] == PATIENT_ID
    assert properties["dicom.PatientBirthDate"] == PATIENT_BIRTH_DATE
    assert properties["dicom.AccessionNumber"] == planted.barcode
    assert properties["dicom.ContainerIdentifier"] == planted.barcode
    assert properties[openslide.PROPERTY_NAME_BARCODE] == planted.barcode
    assert properties["dicom.OperatorsName"] == planted.user
    assert properties["dicom.SeriesDescription"] == planted.filename
    assert properties["dicom.StudyDate"] == "20260314"
    assert properties["dicom.AcquisitionDateTime"] == "20260314092653"
    assert ink(label) > 500 and on_label_paper(label) > 0.5


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("kind", ["mrxs", "dicom"])
def test_zipped_slides_open_once_unzipped(
    kind: str, compression: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    path, base = request.getfixturevalue(kind)
    archive = zip_folder(path.parent, tmp_path / "upload.zip", compression)
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        zipped.extractall(tmp_path / "unzipped")
    assert path.name in names
    if kind == "mrxs":
        assert {"SLIDE/", "SLIDE/Slidedat.ini", "SLIDE/Index.dat"} <= set(names)
    else:
        assert {"level0.dcm", "level1.dcm", "label.dcm", "overview.dcm"} <= set(names)
    unzipped = tmp_path / "unzipped" / path.name
    with openslide.OpenSlide(unzipped) as slide:
        assert slide.properties[openslide.PROPERTY_NAME_VENDOR] == (
            "mirax" if kind == "mrxs" else "dicom"
        )
        assert_matches(slide, base, (1234, 567), 0)


def test_zip_must_lie_outside_the_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outside"):
        zip_folder(tmp_path, tmp_path / "inside.zip")
