"""Synthetic benchmark images: big RGB TIFFs, tiled and JPEG-compressed, of three kinds of content.

- smooth: gradients, rings and stripes (compresses very well, like a scan's empty glass);
- noise: the same under gaussian noise (compresses badly: the slowest JPEG work per tile);
- he: H&E-like tissue: pink stroma with texture, purple nuclei, white background between.
"""

import time
from pathlib import Path

import pyvips

VERSION = 2  # bump when the content changes, so cached files are regenerated
CONTENTS = ("smooth", "noise", "he")


def _smooth(size: int) -> pyvips.Image:
    xyz = pyvips.Image.xyz(size, size)
    x, y = xyz[0], xyz[1]
    c = size / 2
    radius = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
    rings = (radius * (360 / 97)).sin() * 60
    stripes = ((x + y) * (360 / 613)).sin() * 40
    red = x * (160 / size) + rings + 48
    green = y * (160 / size) + stripes + 48
    blue = (x + y) * (80 / size) + rings * 0.5 + stripes * 0.5 + 64
    return red.bandjoin([green, blue])


def _he(size: int) -> pyvips.Image:
    tissue = pyvips.Image.perlin(size, size, cell_size=2048) > 0.05  # islands of tissue
    texture = pyvips.Image.perlin(size, size, cell_size=24)  # fibres of the stroma, -1..1
    nuclei = pyvips.Image.perlin(size, size, cell_size=9) > 0.45  # small dark blobs
    stroma = [235 + texture * 15, 150 + texture * 30, 200 + texture * 20]
    nucleus = [90, 60, 150]
    background = [242, 240, 245]
    bands = [
        (tissue / 255).ifthenelse((nuclei / 255).ifthenelse(n, s), b)
        for s, n, b in zip(stroma, nucleus, background, strict=True)
    ]
    noise = pyvips.Image.gaussnoise(size, size, sigma=4, mean=0)
    return bands[0].bandjoin(bands[1:]) + noise


def synthetic(size: int, content: str = "noise") -> pyvips.Image:
    """A size x size sRGB image of the given content."""
    if content == "he":
        rgb = _he(size)
    elif content == "noise":
        rgb = _smooth(size) + pyvips.Image.gaussnoise(size, size, sigma=10, mean=0)
    else:
        rgb = _smooth(size)
    return rgb.cast("uchar").copy(interpretation="srgb")


def ensure_image(folder: Path, size: int, content: str = "noise") -> Path:
    """Generate (once) the size x size tiled JPEG TIFF in ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{content}-v{VERSION}-{size}.tif"
    if path.exists():
        return path
    tmp = path.with_suffix(".part.tif")
    start = time.monotonic()
    synthetic(size, content).tiffsave(
        str(tmp), tile=True, tile_width=256, tile_height=256, compression="jpeg", Q=85,
        pyramid=False, bigtiff=size > 16384,
    )  # fmt: skip
    tmp.rename(path)
    mb = path.stat().st_size / 1e6
    print(f"  generated {path.name}: {mb:.0f} MB in {time.monotonic() - start:.1f} s", flush=True)
    return path


def ensure_photo(folder: Path, width: int = 2000, height: int = 1500) -> Path:
    """Generate (once) a small JPEG photograph, as a phone or a microscope camera writes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photo-v{VERSION}-{width}x{height}.jpg"
    if not path.exists():
        synthetic(max(width, height), "he").crop(0, 0, width, height).jpegsave(str(path), Q=90)
    return path


if __name__ == "__main__":
    import sys

    for arg in sys.argv[2:]:
        for kind in CONTENTS:
            ensure_image(Path(sys.argv[1]), int(arg), kind)
