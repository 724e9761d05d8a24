"""Slides OpenSlide reads convert with the right pixels; zips of multi-file slides unpack safely;
a slide's upload is recognised by its name or first bytes."""

import io
import sqlite3
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from plexzoom.core.errors import ImageTooLarge, UnsupportedFormat
from plexzoom.core.privacy import looks_like_slide, shown_filename
from plexzoom.core.readers import ReadOptions, open_source
from plexzoom.core.readers.slide import scan_year
from plexzoom.core.readers.slide_zip import check_slide_zip
from tests.slides import write_aperio_svs
from tests.slides_multifile import write_dicom_wsi, write_mrxs, zip_folder
from tests.slides_sakura import write_svslide
from tests.slides_vendors import write_leica_scn, write_ndpi, write_ventana_bif
from tests.slides_vms import write_vms
from tests.slides_vmu_trestle import write_trestle, write_vmu

SIZE = (1536, 1024)


def zipped(tmp_path: Path, write: Callable[[Path], tuple[Path, np.ndarray | None]]) -> np.ndarray:
    folder = tmp_path / "parts"
    _, base = write(folder)
    zip_folder(folder, tmp_path / "slide")
    assert base is not None
    return base


WRITERS: dict[str, Callable[[Path], np.ndarray]] = {
    "hamamatsu": lambda t: write_ndpi(t / "slide", SIZE),
    "leica": lambda t: write_leica_scn(t / "slide", SIZE),
    "ventana": lambda t: write_ventana_bif(t / "slide", (2048, 1536)),
    "mirax": lambda t: zipped(t, lambda f: write_mrxs(f, SIZE)),
    "dicom": lambda t: zipped(t, lambda f: write_dicom_wsi(f, SIZE)),
    "sakura": lambda t: write_svslide(t / "slide", SIZE),
    "dicom-one-file": lambda t: one_file(t, write_dicom_wsi(t / "series", SIZE)),
    "hamamatsu-vms": lambda t: zipped(t, lambda f: write_vms(f, (2048, 1536))),
    "hamamatsu-vmu": lambda t: zipped(t, lambda f: write_vmu(f, (2048, 1536))),
    "trestle": lambda t: alone(t, write_trestle(t / "trestle", (2048, 1536))),
}


def alone(tmp_path: Path, written: tuple[Path, np.ndarray]) -> np.ndarray:
    """The main file of a slide uploaded on its own, without its sibling files."""
    written[0].rename(tmp_path / "slide")
    return written[1]


def one_file(tmp_path: Path, written: tuple[Path, np.ndarray | None]) -> np.ndarray:
    """A DICOM WSI level-0 instance uploaded on its own (the worker names it "original")."""
    (tmp_path / "series" / written[0].name).rename(tmp_path / "slide")
    assert written[1] is not None
    return written[1]


@pytest.mark.parametrize("vendor", WRITERS)
def test_openslide_formats_read_as_one_rgb_picture(tmp_path: Path, vendor: str) -> None:
    base = WRITERS[vendor](tmp_path)
    with open_source(tmp_path / "slide") as source:
        assert source.notes["slide_vendor"] == vendor.split("-")[0]
        assert source.physical_size == (pytest.approx(0.499), pytest.approx(0.499), "µm")
        assert source.is_rgb and (source.width, source.height) == base.shape[1::-1]
        pixels = source.picture().numpy()
    assert np.abs(pixels.astype(int) - base).mean() < 4  # JPEG tiles
    assert list(tmp_path.glob("slide-*.rgb")) == [] and not (tmp_path / "slide-unpacked").exists()


@pytest.mark.parametrize("vendor", ["hamamatsu", "mirax"])
def test_exact_values_read_one_pixel_without_decoding_the_slide(
    tmp_path: Path, vendor: str
) -> None:
    base = WRITERS[vendor](tmp_path)
    with open_source(tmp_path / "slide", ReadOptions(random_access=True)) as source:
        assert source.read_point is not None
        for x, y in [(0, 0), (700, 300), (source.width - 1, source.height - 1)]:
            value = np.array(source.read_point(x, y))
            assert np.abs(value - base[y, x]).max() < 24, (x, y)  # one JPEG pixel
        assert list(tmp_path.glob("slide-*.rgb")) == []  # nothing decoded in full
    assert not (tmp_path / "slide-unpacked").exists()  # a zip unpacks elsewhere


def zip_of(entries: dict[str, bytes], link: str | None = None) -> io.BytesIO:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    data.seek(0)
    return data


SLIDE = {"S.mrxs": b"", "S/Slidedat.ini": b"[GENERAL]", "S/Index.dat": b"01.02"}


@pytest.mark.parametrize(
    ("entries", "link", "error", "reason"),
    [
        ({**SLIDE, "../escape.txt": b"x"}, None, UnsupportedFormat, "points outside"),
        ({**SLIDE, "/etc/cron.d/x": b"x"}, None, UnsupportedFormat, "points outside"),
        ({**SLIDE, "C:/x": b"x"}, None, UnsupportedFormat, "points outside"),
        (SLIDE, "S/link", UnsupportedFormat, "symbolic link"),
        ({**SLIDE, "S/Data0000.dat": bytes(64 * 1024**2)}, None, ImageTooLarge, "times its"),
        ({"notes.txt": b"hello", "a.png": b"x"}, None, UnsupportedFormat, "one MIRAX slide"),
        ({"A.mrxs": b"", "B.mrxs": b""}, None, UnsupportedFormat, "one slide per zip"),
    ],
    ids=["dotdot", "absolute", "drive", "symlink", "bomb", "no-slide", "two-slides"],
)
def test_hostile_or_wrong_zips_are_refused_with_a_reason(
    entries: dict[str, bytes], link: str | None, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        check_slide_zip(zip_of(entries, link), ReadOptions())


def test_a_proper_slide_zip_passes_the_same_check() -> None:
    """The check above refuses because of the entry, not always: the plain slide passes."""
    names = [e.filename for e in check_slide_zip(zip_of(SLIDE), ReadOptions())]
    assert names == list(SLIDE)


def test_entry_count_and_unpacked_size_limits() -> None:
    many = {f"S/f{i}": b"" for i in range(20)} | {"S.mrxs": b""}
    with pytest.raises(ImageTooLarge, match="21 entries"):
        check_slide_zip(zip_of(many), ReadOptions(max_zip_entries=20))
    with pytest.raises(ImageTooLarge, match="unpacks to"):
        check_slide_zip(zip_of(SLIDE | {"S/d": bytes(5000)}), ReadOptions(max_unpacked_bytes=4096))


@pytest.mark.parametrize(
    ("name", "slide"),
    [("case.svs", True), ("x.NDPI", True), ("a.mrxs", True), ("s.zip", True), ("img.tif", False)],
)
def test_slide_uploads_are_known_by_name(name: str, slide: bool) -> None:
    assert looks_like_slide(name, b"II*\x00" + bytes(8)) is slide


def test_slide_uploads_are_known_by_their_first_bytes(tmp_path: Path) -> None:
    write_aperio_svs(tmp_path / "s.tif", (600, 400))
    head = (tmp_path / "s.tif").read_bytes()[: 64 * 1024]
    assert looks_like_slide("DOE_JANE.tif", head)
    assert shown_filename("DOE_JANE.tif", head, show_slide_labels=False) is None
    assert shown_filename("DOE_JANE.tif", head, show_slide_labels=True) == "DOE_JANE.tif"
    assert not looks_like_slide("cells.tif", b"II*\x00" + bytes(600))  # a TIFF of no vendor
    assert shown_filename("cells.tif", b"II*\x00" + bytes(600), False) == "cells.tif"


@pytest.mark.parametrize(
    ("properties", "year"),
    [
        ({"aperio.Date": "03/14/26"}, 2026),
        ({"dicom.StudyDate": "20260314"}, 2026),
        ({"mirax.GENERAL.SLIDE_CREATIONDATETIME": "14/03/2026 09:26:53"}, 2026),
        ({"tiff.DateTime": "2025:01:02 03:04:05"}, 2025),
        ({"aperio.Date": "someday"}, None),
        ({}, None),
    ],
)
def test_only_the_year_of_the_scan(properties: dict[str, str], year: int | None) -> None:
    assert scan_year(properties) == year


def test_a_database_that_is_no_slide_gets_a_reason(tmp_path: Path) -> None:
    """SQLite files are taken as Sakura slides at upload; OpenSlide decides when converting."""
    with sqlite3.connect(tmp_path / "notes.db") as db:
        db.execute("create table samples (name text)")
    db.close()
    with pytest.raises(UnsupportedFormat, match="OpenSlide cannot read it"):
        open_source(tmp_path / "notes.db")
