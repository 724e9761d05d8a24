"""Display normalisation: any supported original becomes upright 8-bit sRGB (or grey)."""

import io
from pathlib import Path

import numpy as np
import pytest
import pyvips
import tifffile

from plexzoom.core.display import GREY_CHANNELS, RGB_CHANNELS, display_channels
from plexzoom.core.display import to_display as to_display_image
from plexzoom.core.errors import CorruptImage
from plexzoom.core.readers import open_source
from tests.conftest import QUADRANTS, encode, quadrant_image

Colour = tuple[int, int, int]


def _display(tmp_path: Path, data: bytes) -> pyvips.Image:
    path = tmp_path / "original"
    path.write_bytes(data)
    with open_source(path) as source:  # the reader's picture, read once as dzsave reads it
        return to_display_image(source.picture()).copy_memory()


def _pixel(image: pyvips.Image, x: int, y: int) -> list[float]:
    return list(image.getpoint(x, y))


def _corners(image: pyvips.Image) -> tuple[list[float], ...]:
    """Pixels well inside the four quadrants: top-left, top-right, bottom-left, bottom-right."""
    w, h = image.width, image.height
    return tuple(
        _pixel(image, x, y) for x, y in ((w // 4, h // 4), (3 * w // 4, h // 4),
                                         (w // 4, 3 * h // 4), (3 * w // 4, 3 * h // 4))
    )  # fmt: skip


def _close(got: list[float], want: Colour, tolerance: float = 6) -> bool:
    return all(abs(g - w) <= tolerance for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("fmt", ["tiff", "png", "jpeg", "webp"])
def test_every_format_becomes_8_bit_srgb(tmp_path: Path, fmt: str) -> None:
    """Each supported format opens as 3-band 8-bit sRGB with its colours where they were."""
    image = _display(tmp_path, encode(quadrant_image(400, 300), fmt))
    assert (image.width, image.height, image.bands, image.format) == (400, 300, 3, "uchar")
    assert image.interpretation == "srgb"
    for got, want in zip(_corners(image), QUADRANTS.values(), strict=True):
        assert _close(got, want), (got, want)
    assert display_channels(image) == RGB_CHANNELS


# EXIF orientation -> which source quadrants end up top-left, top-right, bottom-left, bottom-right
ORIENTED = {
    1: ("top_left", "top_right", "bottom_left", "bottom_right"),
    3: ("bottom_right", "bottom_left", "top_right", "top_left"),
    6: ("bottom_left", "top_left", "bottom_right", "top_right"),
    8: ("top_right", "bottom_right", "top_left", "bottom_left"),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    """A JPEG shot sideways (orientation 6 or 8) or upside down (3) is shown upright."""
    image = quadrant_image(400, 200).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    shown = _display(tmp_path, encode(image, "jpeg"))
    turned = orientation in (6, 8)
    assert (shown.width, shown.height) == ((200, 400) if turned else (400, 200))
    for got, name in zip(_corners(shown), ORIENTED[orientation], strict=True):
        assert _close(got, QUADRANTS[name]), (orientation, name, got)


@pytest.mark.parametrize("fmt", ["png", "tiff", "jpeg"])
def test_an_embedded_non_srgb_profile_is_converted(tmp_path: Path, fmt: str) -> None:
    """Pixels stored in Display P3 with their profile come out as the sRGB colours they mean."""
    p3 = quadrant_image(200, 200).icc_transform("p3")
    assert p3.get_typeof("icc-profile-data")
    stored_red = _pixel(p3, 50, 50)
    assert not _close(stored_red, (255, 0, 0), tolerance=10)  # P3 numbers differ from sRGB's
    shown = _display(tmp_path, encode(p3, fmt))
    assert (shown.bands, shown.format) == (3, "uchar")
    for got, want in zip(_corners(shown), QUADRANTS.values(), strict=True):
        assert _close(got, want, tolerance=8), (got, want)


def _check_cmyk_quadrants(shown: pyvips.Image) -> None:
    """Red, blue and yellow survive a trip through CMYK (pure green is far out of its gamut)."""
    assert (shown.bands, shown.format, shown.interpretation) == (3, "uchar", "srgb")
    red, _, blue, yellow = _corners(shown)
    assert red[0] > 200 and max(red[1:]) < 60, red
    assert blue[2] > 120 and max(blue[:2]) < 100, blue
    assert min(yellow[:2]) > 200 and yellow[2] < 60, yellow


def test_cmyk_with_a_profile_becomes_rgb(tmp_path: Path) -> None:
    """A CMYK JPEG with its profile is shown as 3-band sRGB in about the right colours."""
    cmyk = quadrant_image(200, 200).icc_transform("cmyk")
    assert cmyk.bands == 4
    _check_cmyk_quadrants(_display(tmp_path, encode(cmyk, "jpeg")))


def test_cmyk_without_a_profile_becomes_rgb(tmp_path: Path) -> None:
    """A CMYK JPEG without an embedded profile (common from print workflows) is not inverted."""
    cmyk = quadrant_image(200, 200).icc_transform("cmyk")
    data = bytes(cmyk.jpegsave_buffer(Q=95, keep="none"))
    assert not pyvips.Image.new_from_buffer(data, "").get_typeof("icc-profile-data")
    _check_cmyk_quadrants(_display(tmp_path, data))


@pytest.mark.parametrize("fmt", ["tiff", "png"])
def test_16_bit_rgb_is_scaled_not_clipped(tmp_path: Path, fmt: str) -> None:
    """16-bit values near the top map near 255 and mid values near 128: scaled, not clipped."""
    pixels = np.full((100, 200, 3), 65000, np.uint16)
    pixels[:, :100] = 30000
    pixels[:, :100, 2] = 1000
    image = pyvips.Image.new_from_array(pixels, interpretation="rgb16")
    shown = _display(tmp_path, encode(image, fmt))
    assert (shown.bands, shown.format) == (3, "uchar")
    array = np.asarray(shown.numpy(), float)
    left = array[:, :100].mean(axis=(0, 1))
    right = array[:, 100:].mean(axis=(0, 1))
    assert np.allclose(left, [30000 / 257, 30000 / 257, 1000 / 257], atol=2)
    assert np.allclose(right, [65000 / 257] * 3, atol=2)


def test_16_bit_grey_is_scaled(tmp_path: Path) -> None:
    """A 16-bit greyscale image becomes one 8-bit band, scaled."""
    pixels = np.full((50, 50), 60000, np.uint16)
    pixels[:, :25] = 5000
    image = pyvips.Image.new_from_array(pixels, interpretation="grey16")
    shown = _display(tmp_path, encode(image, "png"))
    assert (shown.bands, shown.format, shown.interpretation) == (1, "uchar", "b-w")
    assert abs(_pixel(shown, 40, 10)[0] - 60000 / 257) <= 2
    assert abs(_pixel(shown, 10, 10)[0] - 5000 / 257) <= 2
    assert display_channels(shown) == GREY_CHANNELS


@pytest.mark.parametrize("bits", [8, 16])
def test_alpha_is_flattened_onto_white(tmp_path: Path, bits: int) -> None:
    """Transparent pixels show white, opaque ones keep their colour, half-transparent blend."""
    top = 255 if bits == 8 else 65535
    pixels = np.zeros((30, 90, 4), np.uint8 if bits == 8 else np.uint16)
    pixels[..., 0] = top
    pixels[:, 30:60, 3] = top // 2 + 1
    pixels[:, 60:, 3] = top
    image = pyvips.Image.new_from_array(pixels, interpretation="srgb" if bits == 8 else "rgb16")
    shown = _display(tmp_path, encode(image, "png"))
    assert (shown.bands, shown.format) == (3, "uchar")
    assert _close(_pixel(shown, 10, 10), (255, 255, 255), tolerance=1)
    assert _close(_pixel(shown, 45, 10), (255, 127, 127), tolerance=3)
    assert _close(_pixel(shown, 75, 10), (255, 0, 0), tolerance=1)


def test_grey_with_alpha_becomes_one_band(tmp_path: Path) -> None:
    """Grey plus alpha flattens onto white and keeps one band."""
    pixels = np.zeros((20, 40, 2), np.uint8)
    pixels[:, 20:, 1] = 255
    shown = _display(
        tmp_path, encode(pyvips.Image.new_from_array(pixels, interpretation="b-w"), "png")
    )
    assert shown.bands == 1
    assert _pixel(shown, 5, 5) == [255.0]
    assert _pixel(shown, 30, 5) == [0.0]


def test_the_largest_page_of_a_multi_page_tiff_is_used(tmp_path: Path) -> None:
    """Slides carry label and macro pages; the largest page (here the second of three) wins."""
    out = io.BytesIO()
    with tifffile.TiffWriter(out) as tiff:
        tiff.write(np.full((30, 40, 3), 50, np.uint8), photometric="rgb")
        tiff.write(np.full((300, 400, 3), 200, np.uint8), photometric="rgb")
        tiff.write(np.full((600, 80, 3), 100, np.uint8), photometric="rgb")  # tall, fewer pixels
    shown = _display(tmp_path, out.getvalue())
    assert (shown.width, shown.height) == (400, 300)
    assert _pixel(shown, 10, 10) == [200.0, 200.0, 200.0]


@pytest.mark.parametrize("bands", [1, 3])
def test_float_images_are_channels_not_pictures(tmp_path: Path, bands: int) -> None:
    """A float TIFF has no picture: its channels keep their values (windowed in the viewer)."""
    ramp = np.linspace(0.0, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    pixels = np.dstack([ramp] * bands) if bands > 1 else ramp
    path = tmp_path / "original"
    path.write_bytes(encode(pyvips.Image.new_from_array(pixels), "tiff"))
    with open_source(path) as source:
        assert source.load_picture is None
        assert len(source.channels) == bands
        assert source.channel(bands - 1).max() == 1.0
        with pytest.raises(ValueError):
            source.picture()


def test_a_damaged_file_is_corrupt_image(tmp_path: Path) -> None:
    """A file with a valid signature but nonsense after it is CorruptImage with a clear message."""
    path = tmp_path / "original"
    path.write_bytes(b"II*\x00" + bytes(200))
    with pytest.raises(CorruptImage) as caught:
        _display(tmp_path, path.read_bytes())
    assert "truncated or damaged" in caught.value.message
