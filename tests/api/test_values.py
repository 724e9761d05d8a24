"""GET /v1/images/{id}/values: exact native values read from the original, on every backend."""

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import sniff_format
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.storage import Storage
from tests.api.conftest import Api, MakeApi

pytestmark = pytest.mark.anyio
RNG = np.random.default_rng(7)


def store(api: Api, tmp_path: Path, data: bytes, name: str, convert: bool = True) -> str:
    """Store ``data`` as an upload named ``name`` and (by default) convert it; return the id."""
    manifest = start_image(api.storage, name)
    api.storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(api.storage, manifest, sniff_format(data[:520]), 1, lambda _: None)
    if convert:
        convert_image(api.storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))
    return manifest.id


async def values(api: Api, image_id: str, x: int, y: int, **query: object) -> list[float]:
    answer = await api.client.get(f"/v1/images/{image_id}/values", params={"x": x, "y": y, **query})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["x"], body["y"]) == (x, y)
    return [v["value"] for v in body["values"]]


def spots(width: int, height: int) -> list[tuple[int, int]]:
    """Corners, the centre and random pixels: every tile edge case a lookup can miss."""
    picked = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    picked.append((width // 2, height // 2))
    picked += [(int(RNG.integers(width)), int(RNG.integers(height))) for _ in range(4)]
    return picked


@pytest.fixture
async def any_api(make_api: MakeApi, storage: Storage) -> Api:
    """The app over each storage backend in turn (local folder, moto, SeaweedFS, mock)."""
    return await make_api(storage)


async def test_tiled_multichannel_tiff(any_api: Api, tmp_path: Path) -> None:
    """A tiled 16-bit OME-TIFF: each channel's value equals the file's, at corners and inside."""
    planes = RNG.integers(0, 65535, (4, 300, 520), dtype=np.uint16)
    path = tmp_path / "x.ome.tif"
    tifffile.imwrite(path, planes, ome=True, tile=(64, 64), compression="zlib")
    image_id = store(any_api, tmp_path, path.read_bytes(), "x.ome.tif")
    for x, y in spots(520, 300):
        assert await values(any_api, image_id, x, y) == [float(v) for v in planes[:, y, x]]
    assert await values(any_api, image_id, 5, 7, c=[2, 0]) == [planes[0, 7, 5], planes[2, 7, 5]]


async def test_stripped_float_and_interleaved(api: Api, tmp_path: Path) -> None:
    """Strips, float32 and interleaved samples (one page, several channels) read exactly."""
    data = RNG.normal(100, 30, (130, 90, 5)).astype(np.float32)
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="contig", rowsperstrip=7)
    image_id = store(api, tmp_path, path.read_bytes(), "f.tif")
    for x, y in spots(90, 130):
        got = await values(api, image_id, x, y)
        assert got == pytest.approx([float(v) for v in data[y, x]], rel=1e-7)


async def test_rgb_pictures(api: Api, tmp_path: Path) -> None:
    """RGB images answer three values: those libvips decodes from the file (PNG is lossless)."""
    rgb = RNG.integers(0, 255, (70, 110, 3), dtype=np.uint8)
    png = pyvips.Image.new_from_array(rgb, interpretation="srgb").pngsave_buffer()
    image_id = store(api, tmp_path, png, "photo.png")
    for x, y in spots(110, 70):
        assert await values(api, image_id, x, y) == [float(v) for v in rgb[y, x]]
    jpeg = pyvips.Image.new_from_array(rgb, interpretation="srgb").jpegsave_buffer(Q=90)
    decoded = pyvips.Image.new_from_buffer(jpeg, "").numpy()
    image_id = store(api, tmp_path, jpeg, "photo.jpg")
    assert await values(api, image_id, 33, 44) == [float(v) for v in decoded[44, 33]]


async def test_a_tiff_in_s3_is_read_by_ranges(
    make_api: MakeApi, s3_storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 24 MB tiled original in S3: a lookup reads its header and one tile per page, not all."""
    api = await make_api(s3_storage)
    planes = RNG.integers(0, 4096, (3, 2048, 2048), dtype=np.uint16)
    path = tmp_path / "big.ome.tif"
    tifffile.imwrite(path, planes, ome=True, tile=(256, 256))
    image_id = store(api, tmp_path, path.read_bytes(), "big.ome.tif")
    read: list[int] = []
    get_range = s3_storage.get_range

    def counting(key: str, start: int, length: int) -> bytes:
        data = get_range(key, start, length)
        if key.endswith("/original"):
            read.append(len(data))
        return data

    monkeypatch.setattr(s3_storage, "get_range", counting)
    monkeypatch.setattr(s3_storage, "download_file", None)  # a copy would fail the lookup
    assert await values(api, image_id, 2000, 1500) == [float(v) for v in planes[:, 1500, 2000]]
    assert await values(api, image_id, 10, 20) == [float(v) for v in planes[:, 20, 10]]
    assert 0 < sum(read) < path.stat().st_size // 8, read


async def test_bad_requests_are_refused_with_reasons(api: Api, tmp_path: Path) -> None:
    """Outside the image, unknown channels, unknown ids and unconverted images: 4xx, a reason."""
    planes = RNG.integers(0, 255, (2, 20, 30), dtype=np.uint8)
    path = tmp_path / "s.ome.tif"
    tifffile.imwrite(path, planes, ome=True)
    image_id = store(api, tmp_path, path.read_bytes(), "s.ome.tif")
    base = f"/v1/images/{image_id}/values"
    outside = await api.client.get(base, params={"x": 30, "y": 0})
    assert outside.status_code == 400 and "outside the image" in outside.json()["detail"]
    assert (await api.client.get(base, params={"x": 29, "y": 19})).status_code == 200
    channel = await api.client.get(base, params={"x": 1, "y": 1, "c": 2})
    assert channel.status_code == 400 and "has 2 channels" in channel.json()["detail"]
    negative = await api.client.get(base, params={"x": -1, "y": 0})
    assert negative.status_code == 422
    unknown = await api.client.get("/v1/images/01jzzzzzzzzzzzzzzzzzzzzzzz/values?x=0&y=0")
    assert unknown.status_code == 404
    waiting = store(api, tmp_path, path.read_bytes(), "s.ome.tif", convert=False)
    pending = await api.client.get(f"/v1/images/{waiting}/values", params={"x": 0, "y": 0})
    assert pending.status_code == 409 and "not converted yet" in pending.json()["detail"]


async def test_values_need_a_key_when_keys_are_set(
    make_api: MakeApi, local_storage: Storage, tmp_path: Path
) -> None:
    """Like every /v1 route: without the key 401, with it the values."""
    api = await make_api(local_storage, api_keys="values-key-123456")
    planes = RNG.integers(0, 255, (2, 20, 30), dtype=np.uint8)
    path = tmp_path / "k.ome.tif"
    tifffile.imwrite(path, planes, ome=True)
    image_id = store(api, tmp_path, path.read_bytes(), "k.ome.tif")
    url = f"/v1/images/{image_id}/values?x=3&y=4"
    assert (await api.client.get(url)).status_code == 401
    keyed = await api.client.get(url, headers={"authorization": "Bearer values-key-123456"})
    assert keyed.status_code == 200
    assert [v["value"] for v in keyed.json()["values"]] == [float(v) for v in planes[:, 4, 3]]


async def test_separate_planes_exact_locally_refused_with_a_reason_in_s3(
    make_api: MakeApi, local_storage: Storage, mock_s3_storage: Storage, tmp_path: Path
) -> None:
    """Samples in separate planes bypass libvips (readers/tiff_direct.py): read from the file
    on the local backend, a 409 that says why from S3, never a wrong number."""
    data = RNG.integers(0, 65535, (3, 40, 50), dtype=np.uint16)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, data, photometric="minisblack", planarconfig="separate")
    local = await make_api(local_storage)
    image_id = store(local, tmp_path, path.read_bytes(), "planar.tif")
    assert await values(local, image_id, 49, 39) == [float(v) for v in data[:, 39, 49]]
    remote = await make_api(mock_s3_storage)
    image_id = store(remote, tmp_path, path.read_bytes(), "planar.tif")
    answer = await remote.client.get(f"/v1/images/{image_id}/values", params={"x": 1, "y": 1})
    assert answer.status_code == 409 and "separate planes" in answer.json()["detail"]
