"""GET /v1/images/{id}/thumbnail: the whole image, its longer side `size` pixels."""

from pathlib import Path

import numpy as np
import pytest
import pyvips

from tests.api.conftest import Api
from tests.api.test_snapshot import two_channels
from tests.api.test_values import store

pytestmark = pytest.mark.anyio


async def test_the_whole_image_scaled_to_the_size_asked(api: Api, tmp_path: Path) -> None:
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif")  # 600 x 400
    answer = await api.client.get(f"/v1/images/{image_id}/thumbnail", params={"size": 150})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    thumb = pyvips.Image.new_from_buffer(answer.content, "")
    assert (thumb.width, thumb.height) == (150, 100)
    same = await api.client.get(
        f"/v1/images/{image_id}/snapshot",
        params={"x": 0, "y": 0, "w": 600, "h": 400, "width": 150, "scalebar": False,
                "legend": False},
    )  # fmt: skip
    assert np.array_equal(thumb.numpy(), pyvips.Image.new_from_buffer(same.content, "").numpy())


async def test_before_ready_and_bad_sizes(api: Api, tmp_path: Path) -> None:
    image_id = store(api, tmp_path, two_channels(tmp_path), "two.ome.tif", convert=False)
    early = await api.client.get(f"/v1/images/{image_id}/thumbnail")
    assert early.status_code == 409 and "ready" in early.json()["detail"]
    for size in (0, 15, 4096):
        bad = await api.client.get(f"/v1/images/{image_id}/thumbnail", params={"size": size})
        assert bad.status_code == 422, size
