"""Storage key layout. Keys are built only from validated ids and fixed names, never user text.

images/{id}/manifest.json                      the record (commit point)
images/{id}/original                           the uploaded bytes
images/{id}/pyramids/{generation}/{name}.zip   one Deep Zoom pyramid, tiles stored uncompressed
images/{id}/pyramids/{generation}/{name}.index.json   byte ranges of its tiles
"""

import re

from plexzoom.core.errors import NotFound
from plexzoom.core.ids import is_generation, is_image_id

IMAGES = "images/"
# "image" is the composite (RGB) pyramid; "c0", "c1", ... the 8-bit pyramid of each channel;
# "pca" the first three principal components of a hyperspectral cube as RGB.
SLIDE_IMAGE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,30}")  # OpenSlide's: label, macro, ...
PYRAMID_NAME = re.compile(r"image|pca|c\d{1,4}")


def image_prefix(image_id: str) -> str:
    """Prefix of everything stored for one image."""
    if not is_image_id(image_id):
        raise NotFound("No image has this id.")
    return f"{IMAGES}{image_id}/"


def manifest_key(image_id: str) -> str:
    """Key of the image's manifest."""
    return image_prefix(image_id) + "manifest.json"


def original_key(image_id: str) -> str:
    """Key of the uploaded original."""
    return image_prefix(image_id) + "original"


def generation_prefix(image_id: str, generation: str) -> str:
    """Prefix of one conversion's pyramids."""
    if not is_generation(generation):
        raise NotFound("No pyramid has this generation.")
    return f"{image_prefix(image_id)}pyramids/{generation}/"


def pyramid_key(image_id: str, generation: str, name: str) -> str:
    """Key of a pyramid archive."""
    return generation_prefix(image_id, generation) + f"{_checked_name(name)}.zip"


def index_key(image_id: str, generation: str, name: str) -> str:
    """Key of a pyramid's tile index."""
    return generation_prefix(image_id, generation) + f"{_checked_name(name)}.index.json"


def slide_image_key(image_id: str, generation: str, name: str) -> str:
    """Key of a slide's label, macro or thumbnail image (kept only when labels are shown)."""
    if not SLIDE_IMAGE_NAME.fullmatch(name):
        raise NotFound("No slide image has this name.")
    return generation_prefix(image_id, generation) + f"slide-{name}.png"


def _checked_name(name: str) -> str:
    if not PYRAMID_NAME.fullmatch(name):
        raise NotFound("No pyramid has this name.")
    return name
