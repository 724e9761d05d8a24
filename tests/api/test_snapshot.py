"""GET /v1/images/{id}/snapshot: a region as PNG, mixed like the viewer, scale bar and legend."""

from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core import snapshot
from tests.api.conftest import Api
from tests.api.test_values import store

pytestmark = pytest.mark.anyio
RNG = np.random.default_rng(3)
RED, GREEN = "ff0000", "00ff00"


def two_channels(tmp_path: Path, pixel_um: float | None = 0.5) -> bytes:
    """A 2-channel 16-bit OME-TIFF of 600 x 400 with smooth ramps (few quantisation steps)."""
    yy, xx = np.mgrid[0:400, 0:600]
    planes = np.stack([xx * 100, yy * 150]).astype(np.uint16)
    path = tmp_path / "two.ome.tif"
    metadata: dict[str, object] = {"axes": "CYX", "Channel": {"Name": ["Ramp X", "Ramp Y"]}}
    if pixel_um is not None:
        metadata |= {"PhysicalSizeX": pixel_um, "PhysicalSizeY": pixel_um}
    tifffile.imwrite(path, planes, ome=True, metadata=metadata, tile=(128, 128))
    return path.read_bytes()


async def png(api: Api, image_id: str, **query: object) -> np.ndarray:
    answer = await api.client.get(f"/v1/images/{image_id}/snapshot", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    return np.asarray(pyvips.Image.new_from_buffer(answer.content, "").numpy())


def expected(
    planes: np.ndarray, windows: list[tuple[float, float]], colours: list[str]
) -> np.ndarray:
    """The additive mix of native values through windows, straight from the data."""
    total = np.zeros((*planes.shape[1:], 3))
    for plane, (low, high), colour in zip(planes, windows, colours, strict=True):
        t = np.clip((plane - low) / (high - low), 0, 1)
        rgb = np.array([int(colour[k : k + 2], 16) for k in (0, 2, 4)], dtype=float)
        total += t[..., None] * rgb
    return np.clip(total, 0, 255)


async def test_full_resolution_equals_the_data_and_the_tile_service(
    api: Api, tmp_path: Path
) -> None:
    """At full resolution the snapshot is the data mixed with the render model (within the
    8-bit codes' steps), and equals the tile service's server-rendered tile byte for byte."""
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif")
    c = f"0:{RED}:0:59900:1,1:{GREEN}:0:59850:1"
    full = await png(api, image_id, x=0, y=0, w=600, h=400, width=600, c=c,
                     scalebar=False, legend=False)  # fmt: skip
    assert full.shape == (400, 600, 3)
    yy, xx = np.mgrid[0:400, 0:600]
    planes = np.stack([xx * 100, yy * 150]).astype(float)
    truth = expected(planes, [(0, 59900), (0, 59850)], [RED, GREEN])
    assert np.abs(full.astype(float) - truth).max() <= 3
    status = (await api.client.get(f"/v1/images/{image_id}")).json()
    dzi = status["links"]["dzi"].replace("/image.dzi", "/render.dzi")
    level = int(np.ceil(np.log2(600)))
    tile_url = dzi.replace("render.dzi", f"render_files/{level}/1_0.png") + f"?c={c}"
    tile = await api.client.get(tile_url)
    assert tile.status_code == 200, tile.text
    served = np.asarray(pyvips.Image.new_from_buffer(tile.content, "").numpy())[:, 1:255, :3]
    assert np.array_equal(full[0:254, 254:508], served[:254, :254])


async def test_scaled_down_view_and_a_region(api: Api, tmp_path: Path) -> None:
    """A quarter width and a region: the sizes asked for, the colours where the data puts them."""
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif")
    c = f"0:{RED}:0:59900:1"
    small = await png(api, image_id, x=0, y=0, w=600, h=400, width=150, c=c,
                      scalebar=False, legend=False)  # fmt: skip
    assert small.shape == (100, 150, 3)
    assert small[50, 2, 0] < 10 and small[50, 147, 0] > 240 and small[..., 1].max() == 0
    part = await png(api, image_id, x=300, y=100, w=200, h=50, width=200, c=c,
                     scalebar=False, legend=False)  # fmt: skip
    assert part.shape == (50, 200, 3)
    assert abs(int(part[0, 0, 0]) - round(300 * 100 / 59900 * 255)) <= 2


async def test_legend_and_scale_bar_are_burned_in(api: Api, tmp_path: Path) -> None:
    """The legend holds a swatch of each visible channel's colour, none of a hidden one; the
    scale bar is a white bar of a round length (0.5 µm pixels, 600 px wide: 50 µm = 100 px)."""
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif")
    query = {"x": 0, "y": 0, "w": 600, "h": 400, "width": 600}
    blank = await png(api, image_id, **query, c="0:0000ff:0:1:1", scalebar=False, legend=False)
    marked = await png(api, image_id, **query, c="0:0000ff:0:1:1")
    assert not np.array_equal(blank, marked)
    corner = marked[:80, :200]
    blue = np.all(corner == [0, 0, 255], axis=-1).sum()
    assert blue >= 12 * 12  # one swatch (the image under the legend is blue too: dimmed)
    assert not np.all(corner == [255, 0, 0], axis=-1).any()  # the hidden red channel
    both = await png(api, image_id, **query, c=f"0:{RED}:0:59900:1,1:{GREEN}:0:59850:1")
    assert np.all(both[:80, :200] == [0, 255, 0], axis=-1).sum() >= 12 * 12
    bar_rows = np.all(marked[300:, :250] == [255, 255, 255], axis=-1).sum(axis=1)
    assert bar_rows.max() == 100  # the bar's rows: exactly 50 µm at 0.5 µm a pixel
    assert np.array_equal(marked[150:250, 250:], blank[150:250, 250:])  # the rest untouched
    assert snapshot._text("CD3 <&> 'x'", 12).width > snapshot._text("CD3", 12).width  # markup
    assert snapshot.format_length(50, "µm") == "50 µm"
    assert snapshot.format_length(2000, "µm") == "2 mm"
    assert snapshot.round_length(73) == 50 and snapshot.round_length(0.0031) == pytest.approx(0.002)


async def test_no_scale_bar_without_a_pixel_size_and_rgb_images(api: Api, tmp_path: Path) -> None:
    """No pixel size: no bar. An RGB photo: its own pyramid, no legend."""
    image_id = store(api, tmp_path, two_channels(tmp_path, pixel_um=None), "n.ome.tif")
    query = {"x": 0, "y": 0, "w": 600, "h": 400, "width": 600, "c": "0:0000ff:0:1:1"}
    plain = await png(api, image_id, **query, legend=False, scalebar=False)
    assert np.array_equal(await png(api, image_id, **query, legend=False), plain)
    rgb = RNG.integers(0, 255, (60, 90, 3), dtype=np.uint8)
    rgb[:, :45] = [200, 30, 30]
    photo = pyvips.Image.new_from_array(rgb, interpretation="srgb").pngsave_buffer()
    photo_id = store(api, tmp_path, photo, "p.png")
    shot = await png(api, photo_id, x=0, y=0, w=90, h=60, width=90)
    assert shot.shape == (60, 90, 3)
    assert np.abs(shot[10:50, 5:35].astype(int) - [200, 30, 30]).mean() < 6  # JPEG tiles


async def test_bad_requests_get_reasons(api: Api, tmp_path: Path) -> None:
    """Enlarged, outside, too large, unconverted, bad settings: 4xx with a sentence."""
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif")
    url = f"/v1/images/{image_id}/snapshot"
    ok = {"x": 0, "y": 0, "w": 600, "h": 400, "width": 300}
    assert (await api.client.get(url, params=ok)).status_code == 200
    cases = [
        ({**ok, "width": 601}, 400, "never enlarged"),
        ({**ok, "x": 10}, 400, "outside the image"),
        ({**ok, "c": "0:red:0:1:1"}, 400, "six hex digits"),
    ]
    for params, code, words in cases:
        answer = await api.client.get(url, params=params)
        assert answer.status_code == code and words in answer.json()["detail"], answer.text
    assert (await api.client.get(url, params={**ok, "w": 0})).status_code == 422
    waiting = store(api, tmp_path, two_channels(tmp_path), "w.ome.tif", convert=False)
    pending = await api.client.get(f"/v1/images/{waiting}/snapshot", params=ok)
    assert pending.status_code == 409 and "not converted yet" in pending.json()["detail"]


def test_the_size_limit_is_checked_before_any_tile_is_read() -> None:
    """A 20000-pixel-wide snapshot is refused from its numbers alone."""
    from plexzoom.core.errors import BadRequest
    from plexzoom.core.manifest import Manifest

    manifest = Manifest(id="01jzzzzzzzzzzzzzzzzzzzzzzz", status="ready", generation="a" * 12,
                        width=40000, height=30000)  # fmt: skip
    with pytest.raises(BadRequest, match="larger than this server makes"):
        snapshot._check(manifest, snapshot.Region(0, 0, 40000, 30000), 20000)
    assert snapshot._check(manifest, snapshot.Region(0, 0, 40000, 30000), 8000) == 6000
