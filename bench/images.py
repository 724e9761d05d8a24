"""Synthetic test images: big RGB TIFFs, tiled and JPEG-compressed, with realistic tile content."""

import time
from pathlib import Path

import pyvips

VERSION = 1  # bump when the content changes, so cached files are regenerated


def synthetic(size: int) -> pyvips.Image:
    """A size x size sRGB image: gradients, rings and stripes plus gaussian noise."""
    xyz = pyvips.Image.xyz(size, size)
    x, y = xyz[0], xyz[1]
    c = size / 2
    radius = ((x - c) ** 2 + (y - c) ** 2) ** 0.5
    rings = (radius * (360 / 97)).sin() * 60
    stripes = ((x + y) * (360 / 613)).sin() * 40
    red = x * (160 / size) + rings + 48
    green = y * (160 / size) + stripes + 48
    blue = (x + y) * (80 / size) + rings * 0.5 + stripes * 0.5 + 64
    noise = pyvips.Image.gaussnoise(size, size, sigma=10, mean=0)
    rgb = red.bandjoin([green, blue]) + noise
    return rgb.cast("uchar").copy(interpretation="srgb")


def ensure_image(folder: Path, size: int) -> Path:
    """Generate (once) the size x size tiled JPEG TIFF in ``folder`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"synthetic-v{VERSION}-{size}.tif"
    if path.exists():
        return path
    tmp = path.with_suffix(".part.tif")
    start = time.monotonic()
    synthetic(size).tiffsave(
        str(tmp), tile=True, tile_width=256, tile_height=256, compression="jpeg", Q=85,
        pyramid=False, bigtiff=size > 16384,
    )  # fmt: skip
    tmp.rename(path)
    mb = path.stat().st_size / 1e6
    print(f"  generated {path.name}: {mb:.0f} MB in {time.monotonic() - start:.1f} s", flush=True)
    return path


if __name__ == "__main__":
    import sys

    for arg in sys.argv[2:]:
        ensure_image(Path(sys.argv[1]), int(arg))
