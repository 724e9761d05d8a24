"""Whole-slide scans are private by default: planted identifying strings and the label appear
in no answer, stored object (but the original), event or log line; with
PLEXZOOM_SHOW_SLIDE_LABELS the same search finds them, which shows the search can fail."""

import io
import json
import logging
import zipfile
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.api import upload
from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.eventlog import summary
from plexzoom.core.inbox import Inbox, scan_inbox
from plexzoom.core.manifest import read_manifest
from plexzoom.core.storage import LocalStorage
from tests.api.conftest import Api
from tests.slides import Planted, write_aperio_svs, write_philips_tiff
from tests.slides_multifile import write_dicom_wsi, write_mrxs, zip_folder
from tests.slides_sakura import write_svslide
from tests.slides_vendors import write_leica_scn, write_ndpi, write_ventana_bif
from tests.slides_vms import write_vms
from tests.slides_vmu_trestle import write_trestle, write_vmu

pytestmark = pytest.mark.anyio
PLANTED = Planted()
# What the generated slides say about the scan's time: only the year may come out.
DATES = ("03/14/26", "09:26:53", "2026-03-14", "20260314", "14/03/2026", "2026:03:14")
SECRETS = (*astuple(PLANTED), *DATES)
Writer = Callable[[Path], object]
SIZE = (1536, 1024)


def zipped(write: Callable[[Path], object]) -> Writer:
    """A writer of a multi-file slide's folder, zipped as users upload it."""

    def write_zip(path: Path) -> None:
        folder = path.with_suffix(".parts")
        write(folder)
        zip_folder(folder, path)

    return write_zip


# vendor (and how, where a vendor has two formats): (writer, the upload's name ending)
SLIDES: dict[str, tuple[Writer, str]] = {
    "aperio": (lambda p: write_aperio_svs(p, SIZE, PLANTED), ".svs"),
    "philips": (lambda p: write_philips_tiff(p, SIZE, PLANTED), ".tiff"),
    "hamamatsu": (lambda p: write_ndpi(p, SIZE, PLANTED), ".ndpi"),
    "leica": (lambda p: write_leica_scn(p, SIZE, PLANTED), ".scn"),
    "ventana": (lambda p: write_ventana_bif(p, (2048, 1536), PLANTED), ".bif"),
    "mirax": (zipped(lambda p: write_mrxs(p, SIZE, PLANTED)), ".zip"),
    "dicom": (zipped(lambda p: write_dicom_wsi(p, SIZE, PLANTED)), ".zip"),
    "sakura": (lambda p: write_svslide(p, SIZE, PLANTED), ".svslide"),
    "hamamatsu-vms": (zipped(lambda p: write_vms(p, (2048, 1536), PLANTED)), ".zip"),
    "hamamatsu-vmu": (zipped(lambda p: write_vmu(p, (2048, 1536), PLANTED)), ".zip"),
    "trestle": (zipped(lambda p: write_trestle(p, (2048, 1536), PLANTED)), ".zip"),
}


def magenta(pixels: np.ndarray) -> int:
    """Pixels of the label card's magenta paper (the tissue's blue stays under 229)."""
    rgb = pixels[..., :3].astype(int)
    return int(np.sum((rgb[..., 0] > 235) & (rgb[..., 1] < 40) & (rgb[..., 2] > 240)))


def decoded(data: bytes) -> np.ndarray | None:
    """The pixels of a PNG or JPEG, or None for other bytes."""
    if not data.startswith((b"\x89PNG", b"\xff\xd8")):
        return None
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy())


def stored_images(storage: LocalStorage, image_id: str) -> list[tuple[str, bytes]]:
    """Every stored file but the original, tiles of pyramid archives one by one."""
    found = []
    original = storage.root / keys.original_key(image_id)
    for path in sorted(p for p in storage.root.rglob("*") if p.is_file() and p != original):
        data = path.read_bytes()
        found.append((str(path.relative_to(storage.root)), data))
        if path.suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                found += [(f"{path.name}:{n}", archive.read(n)) for n in archive.namelist()]
    return found


async def answers(api: Api, image_id: str) -> list[tuple[str, bytes]]:
    """What a client can ask about the image: status, list, DZI, a value,
    the thumbnail, a snapshot, and the event a stream or webhook would carry."""
    status = await api.client.get(f"/v1/images/{image_id}")
    assert status.status_code == 200, status.text
    dzi = status.json()["links"]["dzi"].replace("http://testserver", "")
    values = await api.client.get(f"/v1/images/{image_id}/values?x=10&y=10")
    assert values.status_code == 200, values.text
    paths = [
        "/v1/images",
        dzi,
        f"/v1/images/{image_id}/thumbnail?size=512",
        f"/v1/images/{image_id}/snapshot?x=0&y=0&w=800&h=600&width=400",
    ]
    found = [("status", status.content), ("values", values.content)]
    for path in paths:
        answer = await api.client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        found.append((path, answer.content))
    event = json.dumps(summary(read_manifest(api.storage, image_id)))
    return [*found, ("event", event.encode())]


def leaks(items: list[tuple[str, bytes]], logs: str) -> list[str]:
    """Where a planted string or the label's paper shows up."""
    found = [f"log: {s}" for s in SECRETS if s in logs]
    for name, data in items:
        found += [f"{name}: {s}" for s in SECRETS if s.encode() in data]
        pixels = decoded(data)
        if pixels is not None and magenta(pixels) > 50:
            found.append(f"{name}: the label's pixels")
    return found


async def upload_and_convert(
    api: Api, tmp_path: Path, vendor: str, show: bool
) -> tuple[str, list[str]]:
    """Upload a generated slide as a user would (named after the patient), convert it."""
    write, suffix = SLIDES[vendor]
    path = tmp_path / f"slide{suffix}"
    write(path)
    answer = await api.upload(path.read_bytes(), f"{PLANTED.filename}{suffix}")
    assert answer.status_code == 202, answer.text
    image_id = answer.json()["id"]
    assert (answer.json()["filename"] is None) is not show  # withheld from the first answer
    options = ConvertOptions(scratch_dir=tmp_path, show_slide_labels=show)
    converted = convert_image(api.storage, image_id, options)
    assert converted.status == "ready", converted.error
    return image_id, []


@pytest.mark.parametrize("vendor", SLIDES)
async def test_nothing_identifying_leaves(
    make_api: Callable[..., object], local_storage: LocalStorage, tmp_path: Path,
    vendor: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    api: Api = await make_api(local_storage)  # type: ignore[misc]
    with caplog.at_level(logging.INFO), caplog.at_level(logging.DEBUG, logger="plexzoom"):
        image_id, _ = await upload_and_convert(api, tmp_path, vendor, show=False)
        items = await answers(api, image_id) + stored_images(local_storage, image_id)
    assert leaks(items, caplog.text) == []
    notes = read_manifest(api.storage, image_id).notes
    assert notes["slide_vendor"] == vendor.split("-")[0]
    assert notes.get("scan_year") in (None, 2026)
    assert {"label", "macro"} & set(notes["slide_images_withheld"])
    label = await api.client.get(f"/v1/images/{image_id}/slide-images/label")
    assert label.status_code == 404 and "PLEXZOOM_SHOW_SLIDE_LABELS" in label.text


@pytest.mark.parametrize("vendor", SLIDES)
async def test_with_labels_shown_the_same_search_finds_them(
    make_api: Callable[..., object], local_storage: LocalStorage, tmp_path: Path, vendor: str
) -> None:
    api: Api = await make_api(local_storage, show_slide_labels=True)  # type: ignore[misc]
    image_id, _ = await upload_and_convert(api, tmp_path, vendor, show=True)
    items = await answers(api, image_id) + stored_images(local_storage, image_id)
    kept = read_manifest(api.storage, image_id).notes["slide_images"]
    name = "label" if "label" in kept else "macro"  # some formats keep the label in the macro
    label = await api.client.get(f"/v1/images/{image_id}/slide-images/{name}")
    assert label.status_code == 200
    found = leaks([*items, ("label", label.content)], "")
    assert f"status: {PLANTED.filename}" in found
    assert "label: the label's pixels" in found
    assert any(item.endswith(f"slide-{name}.png: the label's pixels") for item in found)


@pytest.mark.parametrize(("vendor", "suffix"), [("aperio", ".svs"), ("philips", ".tif")])
async def test_slides_from_the_inbox_keep_no_name_either(
    make_api: Callable[..., object], local_storage: LocalStorage, tmp_path: Path,
    vendor: str, suffix: str,
) -> None:  # fmt: skip
    """Known by name (.svs) when taken, or by content (a Philips slide named .tif) when
    converted: the inbox key goes from the claim and the record too."""
    api: Api = await make_api(local_storage)  # type: ignore[misc]
    dropped = local_storage.root / "inbox" / "lab" / f"{PLANTED.filename}{suffix}"
    dropped.parent.mkdir(parents=True)
    SLIDES[vendor][0](dropped)
    (image_id,) = scan_inbox(
        local_storage, Inbox(prefix="inbox/", settle_s=0), lambda _: None
    ).taken
    options = ConvertOptions(scratch_dir=tmp_path)
    assert convert_image(local_storage, image_id, options).status == "ready"
    items = await answers(api, image_id) + stored_images(local_storage, image_id)
    assert [name for name, _ in items if name.startswith("claims/")]  # the claim was searched
    assert leaks(items, "") == []


@pytest.mark.parametrize(("vendor", "slide"), [("philips", True), ("plain", False)])
async def test_a_tiff_not_told_at_upload_shows_its_name_only_if_no_slide(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vendor: str, slide: bool
) -> None:
    """With the first page past the bytes the upload is judged by (as libtiff writes it), the
    name is hidden until the conversion knows; then shown for a plain TIFF only."""
    monkeypatch.setattr(upload, "PRIVACY_HEAD_BYTES", 16)  # the head holds no first page
    path = tmp_path / "scan.tif"
    if slide:
        write_philips_tiff(path, SIZE, PLANTED)
    else:
        tifffile.imwrite(path, np.zeros((300, 400, 3), np.uint8), photometric="rgb")
    name = f"{PLANTED.filename}.tif"
    answer = await api.upload(path.read_bytes(), name)
    assert answer.status_code == 202 and answer.json()["filename"] is None
    image_id = answer.json()["id"]
    assert summary(read_manifest(api.storage, image_id))["filename"] is None  # the event
    convert_image(api.storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    manifest = read_manifest(api.storage, image_id)
    assert manifest.filename == (None if slide else name) and manifest.filename_pending is None
