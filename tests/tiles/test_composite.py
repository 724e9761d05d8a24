"""Server-side rendering of multi-channel composites, and the saved render settings API."""

from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.formats import TIFF
from plexzoom.core.images import reconvert_image, save_render, start_image, submit_image
from plexzoom.core.manifest import Manifest, read_manifest, write_manifest
from plexzoom.core.pyramid import TileIndex
from plexzoom.core.render import ChannelRender, RenderSettings, channel_table, render
from plexzoom.core.storage import LocalStorage
from plexzoom.tiles.app import TileService

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStorage, Manifest]:
    """A three-channel uint16 OME-TIFF, converted."""
    folder = tmp_path_factory.mktemp("composite")
    rng = np.random.default_rng(2)
    planes = rng.gamma(2, 300, (3, 300, 500)).astype(np.uint16)
    path = folder / "three.ome.tif"
    tifffile.imwrite(path, planes, ome=True, metadata={"axes": "CYX"})
    storage = LocalStorage(folder / "data")
    manifest = start_image(storage, "three.ome.tif")
    storage.put_bytes(keys.original_key(manifest.id), path.read_bytes())
    submit_image(storage, manifest, TIFF, 1, lambda _: None)
    done = convert_image(storage, manifest.id, ConvertOptions(scratch_dir=folder))
    assert done.status == "ready"
    return storage, done


def channel_codes(storage: LocalStorage, manifest: Manifest, index: int) -> np.ndarray:
    """Codes of full-resolution tile (1, 0) of one channel pyramid."""
    gen, name = manifest.generation, f"c{index}"
    tiles = TileIndex.from_json(storage.get_bytes(keys.index_key(manifest.id, gen, name)))
    where = tiles.tile_range(tiles.max_level, 1, 0)
    assert where is not None
    data = storage.get_range(keys.pyramid_key(manifest.id, gen, name), *where)
    return np.asarray(pyvips.Image.new_from_buffer(data, "").numpy()).astype(np.uint8)


async def get(app: TileService, url: str) -> httpx.Response:
    """One request to the tile service over ASGI."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(url)


async def test_a_rendered_tile_follows_the_render_model(
    converted: tuple[LocalStorage, Manifest],
) -> None:
    """Two channels in chosen colours, windows and gammas: pixels equal core.render's."""
    storage, manifest = converted
    base = f"/tiles/{manifest.id}/{manifest.generation}/render"
    level = manifest.pyramids["c0"].levels - 1
    query = "c=0:ff00ff:100:900:1,2:00ff00:0:2000:2.2"
    answer = await get(TileService(storage), f"{base}_files/{level}/1_0.png?{query}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    drawn = np.asarray(pyvips.Image.new_from_buffer(answer.content, "").numpy())
    settings = [
        ChannelRender(index=0, color="#ff00ff", min=100, max=900),
        ChannelRender(index=2, color="#00ff00", min=0, max=2000, gamma=2.2),
    ]
    tables = [channel_table(manifest.channels[s.index].lut or [], s) for s in settings]
    want = render([channel_codes(storage, manifest, s.index) for s in settings], tables)
    assert np.array_equal(drawn, want)
    dzi = await get(TileService(storage), f"{base}.dzi?{query}")
    assert 'Format="png"' in dzi.text and 'Width="500"' in dzi.text


async def test_without_settings_the_saved_defaults_are_drawn(
    converted: tuple[LocalStorage, Manifest],
) -> None:
    """No query: the image's defaults, which a PUT changes (so the tile is not cached forever)."""
    storage, manifest = converted
    level = manifest.pyramids["c0"].levels - 1
    url = f"/tiles/{manifest.id}/{manifest.generation}/render_files/{level}/1_0.png"
    before = await get(TileService(storage), url)
    assert before.headers["cache-control"] == "public, max-age=60"
    only_red = RenderSettings(
        channels=[
            ChannelRender(index=i, visible=i == 1, color="#ff0000", min=0, max=500)
            for i in range(3)
        ]
    )
    save_render(storage, manifest.id, only_red)
    try:
        after = await get(TileService(storage), url)
        pixels = np.asarray(pyvips.Image.new_from_buffer(after.content, "").numpy())
        assert pixels[..., 1].max() == 0 and pixels[..., 2].max() == 0
        assert pixels[..., 0].mean() > 50
        assert after.headers["etag"] != before.headers["etag"]
    finally:
        fresh = read_manifest(storage, manifest.id)
        fresh.render = None
        write_manifest(storage, fresh)


@pytest.mark.parametrize(
    "query", ["c=9:ff0000:0:1:1", "c=0:red:0:1", "c=0:ff0000:zero:1", "c=0:ff0000:0:1:0"]
)
async def test_bad_settings_are_400(converted: tuple[LocalStorage, Manifest], query: str) -> None:
    """Unknown channels, bad colours, numbers and gammas answer 400 with a reason."""
    storage, manifest = converted
    answer = await get(
        TileService(storage), f"/tiles/{manifest.id}/{manifest.generation}/render.dzi?{query}"
    )
    assert answer.status_code == 400
    assert answer.text


async def test_an_rgb_image_has_no_render_tiles(tmp_path: Path) -> None:
    """Photographs have no channel pyramids: render URLs are 404."""
    storage = LocalStorage(tmp_path / "data")
    manifest = start_image(storage, "x.png")
    data = pyvips.Image.black(300, 200, bands=3).write_to_buffer(".png")
    storage.put_bytes(keys.original_key(manifest.id), data)
    submit_image(storage, manifest, TIFF, 1, lambda _: None)
    convert_image(storage, manifest.id, ConvertOptions(scratch_dir=tmp_path))
    answer = await get(
        TileService(storage), f"/tiles/{manifest.id}/{manifest.generation}/render.dzi"
    )
    assert answer.status_code == 404


async def test_rendering_continues_from_the_committed_channels_during_a_reconversion(
    converted: tuple[LocalStorage, Manifest],
) -> None:
    """Re-queued under a new generation, the image still renders from its committed channel
    pyramids, byte for byte as before; the uncommitted generation renders nothing."""
    storage, manifest = converted
    base = f"/tiles/{manifest.id}/{manifest.generation}/render"
    url = f"{base}_files/{manifest.pyramids['c0'].levels - 1}/1_0.png?c=1:ffffff:0:3000:1"
    before = await get(TileService(storage), url)
    assert before.status_code == 200
    requeued = reconvert_image(storage, manifest.id, lambda _id: None)
    try:
        during = await get(TileService(storage), url)
        assert during.status_code == 200 and during.content == before.content
        staging = url.replace(manifest.generation, requeued.generation)
        assert (await get(TileService(storage), staging)).status_code == 404
    finally:
        write_manifest(storage, manifest)  # the module's other tests use the converted image
