"""PNG, JPEG and WebP: colour photographs are RGB, grey images one channel."""

from pathlib import Path

import numpy as np
import pytest
import pyvips

from plexzoom.core.readers import open_source
from tests.conftest import quadrant_array

H, W = 60, 80


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_colour_photograph_is_rgb(tmp_path: Path, suffix: str) -> None:
    pixels = quadrant_array(W, H)
    path = tmp_path / f"photo{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {"Q": 95}
    pyvips.Image.new_from_array(pixels, interpretation="srgb").write_to_file(str(path), **options)
    with open_source(path) as source:
        assert source.is_rgb and (source.width, source.height, source.dtype) == (W, H, "uint8")
        assert [c.name for c in source.channels] == ["Red", "Green", "Blue"]
        for band in range(3):
            decoded = source.channel(band).numpy().astype(int)
            assert np.abs(decoded - pixels[:, :, band]).max() <= (12 if suffix == ".jpg" else 0)


def test_sixteen_bit_grey_png(tmp_path: Path) -> None:
    data = (np.arange(H * W).reshape(H, W) * 13).astype(np.uint16)
    path = tmp_path / "grey.png"
    pyvips.Image.new_from_array(data, interpretation="grey16").pngsave(str(path))
    with open_source(path) as source:
        assert not source.is_rgb and source.dtype == "uint16"
        assert [c.name for c in source.channels] == ["Gray"]
        np.testing.assert_array_equal(source.channel(0).numpy(), data)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = pyvips.Image.new_from_array(quadrant_array(W, H), interpretation="srgb").copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    path = tmp_path / "rotated.jpg"
    image.jpegsave(str(path), Q=95)
    with open_source(path) as source:
        assert (source.width, source.height) == (H, W)
        assert source.channel(0).width == H
        assert source.notes["orientation"] == 6


def test_name_does_not_choose_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "actually-a-png.tif"
    pyvips.Image.new_from_array(quadrant_array(W, H), interpretation="srgb").pngsave(str(path))
    with open_source(path) as source:
        assert source.notes["source_format"] == "png"
