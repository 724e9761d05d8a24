"""The generated Sakura SVSLIDE opens in OpenSlide 4 as vendor "sakura", with the pixels, levels,
pixel size, objective, associated images and planted strings it was written with."""

import sqlite3
from pathlib import Path
from typing import NamedTuple

import numpy as np
import openslide
import pytest

from tests.slides import APP_MAG, LABEL_PAPER, MPP, Planted, label_pixels
from tests.slides_sakura import MAGIC, TILE, write_svslide

SIZE = (2048, 1536)


class Slide(NamedTuple):
    """A generated SVSLIDE: its file and its level-0 pixels."""

    path: Path
    base: np.ndarray


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> Slide:
    """The slide, written once for the module."""
    path = tmp_path_factory.mktemp("sakura") / "slide.svslide"
    return Slide(path, write_svslide(path, SIZE))


def region(handle: openslide.OpenSlide, at: tuple[int, int], level: int, size: int) -> np.ndarray:
    """A square of the slide's RGB pixels, its corner given in level-0 coordinates."""
    return np.asarray(handle.read_region(at, level, (size, size)).convert("RGB")).astype(int)


def assert_close(actual: np.ndarray, expected: np.ndarray, mean: float = 2) -> None:
    """Pixels equal within what quality-90 JPEG loses."""
    assert actual.shape == expected.shape
    difference = np.abs(actual - expected.astype(int))
    assert difference.max() <= 16 and difference.mean() <= mean


def test_detected_and_opened_as_sakura(slide: Slide) -> None:
    assert openslide.OpenSlide.detect_format(slide.path) == "sakura"
    with openslide.OpenSlide(slide.path) as handle:
        assert handle.properties[openslide.PROPERTY_NAME_VENDOR] == "sakura"


def test_is_one_sqlite_database_with_the_magic(slide: Slide) -> None:
    assert slide.path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert [p.name for p in slide.path.parent.iterdir()] == [slide.path.name]  # no journal
    with sqlite3.connect(slide.path) as db:
        (table,) = db.execute("SELECT TableName FROM DataManagerSQLiteConfigXPO").fetchone()
        magic = db.execute(f'SELECT data FROM "{table}" WHERE id = ?', ("++MagicBytes",))
        assert magic.fetchone() == (MAGIC,)


def test_level_0_is_the_returned_pixels(slide: Slide) -> None:
    height, width = slide.base.shape[:2]
    assert (width, height) == SIZE
    with openslide.OpenSlide(slide.path) as handle:
        assert handle.dimensions == SIZE
        for x, y in [(0, 0), (width // 2 - 128, height // 2 - 128), (width - 256, height - 256)]:
            assert_close(region(handle, (x, y), 0, 256), slide.base[y : y + 256, x : x + 256])


def test_levels_halve_down_to_one_tile(slide: Slide) -> None:
    width, height = SIZE
    with openslide.OpenSlide(slide.path) as handle:
        assert handle.level_count == 4
        assert handle.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert handle.level_dimensions == tuple((width >> n, height >> n) for n in range(4))
        assert handle.properties["openslide.level[0].tile-width"] == str(TILE)
        for level in range(1, 4):
            factor = 1 << level
            reduced = region(handle, (0, 0), level, 192)
            assert_close(reduced, slide.base[::factor, ::factor][:192, :192], mean=3)


def test_an_odd_size_is_clipped_at_each_level_edge(tmp_path: Path) -> None:
    """Edge tiles are whole; OpenSlide makes each level size // downsample and clips them."""
    path = tmp_path / "odd.svslide"
    base = write_svslide(path, (1030, 700))
    with openslide.OpenSlide(path) as handle:
        assert handle.level_dimensions == ((1030, 700), (515, 350), (257, 175), (128, 87))
        corner = np.asarray(handle.read_region((774, 444), 0, (256, 256)).convert("RGB"))
        assert_close(corner.astype(int), base[444:700, 774:1030])


def test_pixel_size_and_objective(slide: Slide) -> None:
    with openslide.OpenSlide(slide.path) as handle:
        properties = handle.properties
        assert float(properties[openslide.PROPERTY_NAME_MPP_X]) == pytest.approx(MPP)
        assert float(properties[openslide.PROPERTY_NAME_MPP_Y]) == pytest.approx(MPP)
        assert float(properties["sakura.ResolutionMmPerPix"]) == pytest.approx(MPP / 1000)
        assert properties[openslide.PROPERTY_NAME_OBJECTIVE_POWER] == str(APP_MAG)


def test_associated_images(slide: Slide) -> None:
    """The label is label_pixels; the macro begins with the label card, whose paper is a
    colour no tissue has; the thumbnail is the slide shrunk."""
    with openslide.OpenSlide(slide.path) as handle:
        images = handle.associated_images
        assert set(images) == {"label", "macro", "thumbnail"}
        label = np.asarray(images["label"].convert("RGB")).astype(int)
        macro = np.asarray(images["macro"].convert("RGB")).astype(int)
        thumbnail = np.asarray(images["thumbnail"].convert("RGB")).astype(int)
    expected = label_pixels(Planted()).astype(int)
    assert label.shape == expected.shape
    assert np.abs(label - expected).mean() < 4
    assert macro.shape == (300, 900, 3)
    assert np.abs(macro[2:8, 2:8].reshape(-1, 3).mean(axis=0) - LABEL_PAPER).max() <= 12
    assert thumbnail.shape == (192, 256, 3)
    assert np.abs(thumbnail - slide.base[4::8, 4::8]).mean() < 6


def test_properties_carry_the_planted_strings(tmp_path: Path) -> None:
    planted = Planted(
        patient="ROE^RICHARD", barcode="S26-99999 B2", filename="ROE_S26-99999", user="a.jones"
    )
    path = tmp_path / "planted.svslide"
    write_svslide(path, (1024, 768), planted)
    with openslide.OpenSlide(path) as handle:
        properties = dict(handle.properties)
        label = np.asarray(handle.associated_images["label"].convert("RGB")).astype(int)
    assert properties["sakura.SlideId"] == planted.barcode
    assert properties["sakura.Description"] == planted.patient
    assert properties["sakura.Creator"] == planted.user
    assert properties["sakura.Keywords"] == planted.filename
    values = set(properties.values())
    assert {planted.patient, planted.barcode, planted.filename, planted.user} <= values
    assert np.abs(label - label_pixels(planted).astype(int)).mean() < 4
