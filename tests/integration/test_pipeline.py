"""Upload -> Redis -> worker -> pyramid -> tiles through real processes, on both backends."""

import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from tests.core.readers.files import sample_one_channel, sample_three_channels
from tests.integration.conftest import stored_keys
from tests.servers import Stack

pytestmark = pytest.mark.slow
# Quadrant colours of the generated test pattern (top-left, top-right, bottom-left, bottom-right).
QUADRANTS = [(230, 30, 30), (30, 200, 40), (40, 60, 220), (240, 220, 30)]


def quadrant_image(width: int, height: int) -> pyvips.Image:
    """An RGB image with one flat colour per quadrant: easy to check at any zoom."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    h2, w2 = height // 2, width // 2
    for (rows, cols), colour in zip(
        [
            (slice(0, h2), slice(0, w2)),
            (slice(0, h2), slice(w2, None)),
            (slice(h2, None), slice(0, w2)),
            (slice(h2, None), slice(w2, None)),
        ],
        QUADRANTS,
        strict=True,
    ):
        array[rows, cols] = colour
    return pyvips.Image.new_from_array(array, interpretation="srgb")


def upload(stack: Stack, data: bytes, name: str) -> dict[str, object]:
    """POST a file; return the 202 body."""
    answer = httpx.post(
        f"{stack.url}/v1/images", files={"file": (name, io.BytesIO(data))}, timeout=60
    )
    assert answer.status_code == 202, answer.text
    return answer.json()


def tile_pixel(
    stack: Stack, dzi: str, level: int, col: int, row: int, x: int, y: int
) -> list[float]:
    """Decode one tile from the tile service and read one pixel."""
    answer = httpx.get(dzi.replace(".dzi", f"_files/{level}/{col}_{row}.jpeg"))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    return list(pyvips.Image.new_from_buffer(answer.content, "")(x, y))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_upload_converts_and_serves_tiles(stack: Stack, suffix: str) -> None:
    """Every upload format ends ready with correct pixels in its full-resolution tiles."""
    data = quadrant_image(1200, 800).write_to_buffer(suffix)
    created = upload(stack, data, f"pattern{suffix}")
    assert created["status"] == "queued"
    assert set(created["links"]) >= {"self", "dzi", "viewer"}  # type: ignore[arg-type]
    done = stack.wait_status(str(created["id"]))
    assert done["status"] == "ready", done
    assert (done["width"], done["height"]) == (1200, 800)
    assert [c["name"] for c in done["channels"]] == ["Red", "Green", "Blue"]  # type: ignore[union-attr]
    dzi = str(done["links"]["dzi"])  # type: ignore[index]
    assert 'Width="1200"' in httpx.get(dzi).text
    # Level 11 is full resolution (2**11 >= 1200). Tile (0,0) lies in the top-left quadrant,
    # tile (4,3) at x>=1016, y>=762 in the bottom-right one.
    for (col, row), colour in [((0, 0), QUADRANTS[0]), ((4, 3), QUADRANTS[3])]:
        pixel = tile_pixel(stack, dzi, 11, col, row, 10, 10)
        assert np.allclose(pixel, colour, atol=12), (col, row, pixel)


def wait_progress(stack: Stack, image_id: str, at_least: float) -> dict[str, object]:
    """Poll until the image is processing at ``at_least`` progress or more."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, object] = httpx.get(f"{stack.url}/v1/images/{image_id}").json()
        if body["status"] == "processing" and float(str(body["progress"])) >= at_least:
            return body
        assert body["status"] not in ("ready", "failed"), body
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} never reached progress {at_least}")


def test_progress_rises_during_a_conversion(stack: Stack) -> None:
    """Held as it reads, as it starts its pyramid and mid-pyramid, a conversion shows each
    progress value in turn, then ready. (libvips builds on while the hold blocks its progress
    callback, so no hold can follow one in the middle of the pyramid.)"""
    points = (0.0, 0.05, 0.3)
    stack.hold.arm(*points)
    image = pyvips.Image.gaussnoise(3000, 3000, sigma=60).cast("uchar").bandjoin([128, 64])
    data = image.copy(interpretation="srgb").tiffsave_buffer(tile=True, compression="jpeg")
    created = upload(stack, data, "noise.tif")
    seen: list[float] = []
    try:
        for point in points:
            stack.hold.wait_held(point)
            seen.append(float(str(wait_progress(stack, str(created["id"]), point)["progress"])))
            stack.hold.release(point)
    finally:
        stack.hold.disarm()  # the module's other conversions run freely
    assert stack.wait_status(str(created["id"]))["status"] == "ready"
    assert seen == sorted(set(seen)) and seen[0] == 0 and seen[-1] < 1, seen


def test_delete_removes_everything(stack: Stack) -> None:
    """DELETE removes original, pyramids and manifest; then the image is 404."""
    created = upload(stack, quadrant_image(600, 400).write_to_buffer(".png"), "del.png")
    image_id = str(created["id"])
    done = stack.wait_status(image_id)
    assert stored_keys(stack, f"images/{image_id}/")
    assert httpx.delete(f"{stack.url}/v1/images/{image_id}").status_code == 204
    assert httpx.get(f"{stack.url}/v1/images/{image_id}").status_code == 404
    assert httpx.get(str(done["links"]["dzi"])).status_code == 404  # type: ignore[index]
    assert stored_keys(stack, f"images/{image_id}/") == set()


def test_reconvert_makes_a_new_generation(stack: Stack) -> None:
    """Re-conversion gives new tile URLs; the old generation is removed after the commit."""
    created = upload(stack, quadrant_image(700, 500).write_to_buffer(".jpg"), "again.jpg")
    image_id = str(created["id"])
    first = stack.wait_status(image_id)
    answer = httpx.post(f"{stack.url}/v1/images/{image_id}/reconvert")
    assert answer.status_code == 202
    second = stack.wait_status(image_id)
    old, new = str(first["links"]["dzi"]), str(second["links"]["dzi"])  # type: ignore[index]
    assert old != new
    assert httpx.get(new).status_code == 200
    keys = stored_keys(stack, f"images/{image_id}/pyramids/")
    assert {k.split("/")[3] for k in keys} == {new.split("/")[-2]}


@pytest.mark.parametrize(
    ("write_sample", "size"),
    [(sample_three_channels, (954, 1020)), (sample_one_channel, (914, 1260))],
    ids=["44153", "10974"],
)
def test_seed_samples_convert(
    stack: Stack, tmp_path: Path, write_sample: Callable[[Path], Path], size: tuple[int, int]
) -> None:
    """Stand-ins for the two seed OME-TIFF samples (2008 schema, big-endian) always convert."""
    sample = write_sample(tmp_path / "sample.ome.tif")
    created = upload(stack, sample.read_bytes(), sample.name)
    done = stack.wait_status(str(created["id"]))
    assert done["status"] == "ready", done
    assert (done["width"], done["height"]) == size


def test_bad_upload_is_refused_and_corrupt_image_fails(stack: Stack) -> None:
    """Text gets 415; a truncated TIFF ends failed with a reason and keeps its original."""
    answer = httpx.post(f"{stack.url}/v1/images", files={"file": ("x.png", b"hello world" * 10)})
    assert answer.status_code == 415
    assert "TIFF" in answer.json()["detail"]
    data = quadrant_image(800, 600).tiffsave_buffer(tile=True, compression="deflate")
    created = upload(stack, data[: len(data) // 3], "cut.tif")
    done = stack.wait_status(str(created["id"]))
    assert done["status"] == "failed"
    assert "truncated or damaged" in str(done["error"])
    assert f"images/{created['id']}/original" in stored_keys(stack, f"images/{created['id']}/")
