"""GET/PUT /v1/images/{id}/render: the saved default render settings of an image."""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import TIFF
from plexzoom.core.images import start_image, submit_image
from tests.api.conftest import Api

pytestmark = pytest.mark.anyio


def converted(api: Api, tmp_path: Path, planes: np.ndarray) -> str:
    """Convert planes (C, Y, X) as an OME-TIFF into the API's storage; return the id."""
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, planes, ome=True, metadata={"axes": "CYX"})
    manifest = start_image(api.storage, "x.ome.tif")
    api.storage.put_bytes(keys.original_key(manifest.id), path.read_bytes())
    submit_image(api.storage, manifest, TIFF, 1, lambda _: None)
    convert_image(api.storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))
    return manifest.id


async def test_defaults_then_saved_settings(api: Api, tmp_path: Path) -> None:
    """GET gives each channel's default window; PUT saves new defaults that GET then returns."""
    planes = np.random.default_rng(0).integers(0, 4000, (3, 64, 80)).astype(np.uint16)
    image_id = converted(api, tmp_path, planes)
    answer = await api.client.get(f"/v1/images/{image_id}/render")
    assert answer.status_code == 200
    settings = answer.json()
    assert [c["index"] for c in settings["channels"]] == [0, 1, 2]
    status = (await api.client.get(f"/v1/images/{image_id}")).json()
    assert settings["channels"][1]["min"] == status["channels"][1]["window"]["min"]
    assert status["channels"][1]["dzi"].endswith("/c1.dzi")
    settings["channels"][1].update(visible=False, gamma=2.0, color="#123456")
    saved = await api.client.put(f"/v1/images/{image_id}/render", json=settings)
    assert saved.status_code == 200, saved.text
    again = (await api.client.get(f"/v1/images/{image_id}/render")).json()
    assert again["channels"][1] == {**settings["channels"][1]}
    # Converted again: the committed conversion's settings stay readable meanwhile.
    assert (await api.client.post(f"/v1/images/{image_id}/reconvert")).status_code == 202
    during = await api.client.get(f"/v1/images/{image_id}/render")
    assert during.status_code == 200 and during.json() == again


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s["channels"].pop(),
        lambda s: s["channels"][0].update(color="red"),
        lambda s: s["channels"][0].update(gamma=0),
        lambda s: s["channels"][0].update(index=1),
        lambda s: s["channels"][0].update(extra=1),
    ],
)
async def test_bad_settings_are_refused(api: Api, tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Missing or doubled channels, bad colours, gammas or fields: 400/422 with a reason."""
    planes = np.zeros((2, 32, 32), dtype=np.uint16)
    image_id = converted(api, tmp_path, planes)
    settings = (await api.client.get(f"/v1/images/{image_id}/render")).json()
    change(settings)
    answer = await api.client.put(f"/v1/images/{image_id}/render", json=settings)
    assert answer.status_code in (400, 422)
    assert answer.json()["detail"]


async def test_rgb_images_and_unknown_ids(api: Api, tmp_path: Path) -> None:
    """An RGB photograph has no render settings (409); an unknown id is 404."""
    import pyvips

    created = await api.upload(pyvips.Image.black(64, 48, bands=3).write_to_buffer(".png"))
    image_id = created.json()["id"]
    queued = await api.client.get(f"/v1/images/{image_id}/render")
    assert queued.status_code == 409 and "queued" in queued.json()["detail"]
    convert_image(api.storage, image_id, ConvertOptions(scratch_dir=tmp_path))
    assert (await api.client.get(f"/v1/images/{image_id}/render")).status_code == 409
    assert (await api.client.get("/v1/images/00000000000000000000000000/render")).status_code == 404


@pytest.mark.parametrize("name", ["../x", "a b", "1abc", "x" * 80])
async def test_a_bad_variable_name_is_refused(api: Api, name: str) -> None:
    """The MATLAB variable option is a plain identifier; anything else is 422 before reading."""
    answer = await api.client.post(
        "/v1/images", params={"variable": name}, files={"file": ("x.mat", b"MATLAB 5.0")}
    )
    assert answer.status_code == 422
