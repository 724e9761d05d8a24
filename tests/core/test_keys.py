"""Storage keys: the documented layout, built only from ids and fixed names."""

import pytest

from plexzoom.core import keys
from plexzoom.core.errors import NotFound
from plexzoom.core.ids import new_generation, new_image_id

ODD_TEXT = [
    "",
    "..",
    "../etc/passwd",
    "a/b",
    "%2e%2e",
    "\x00",
    "x" * 4000,
    "IMAGE",
    "01arz3ndektsv4rrffq69g5fa",  # 25 characters
]


def test_the_key_layout() -> None:
    """Every key of an image lies under images/{id}/ in the layout the manifest documents."""
    image_id, gen = new_image_id(), new_generation()
    assert keys.image_prefix(image_id) == f"images/{image_id}/"
    assert keys.manifest_key(image_id) == f"images/{image_id}/manifest.json"
    assert keys.original_key(image_id) == f"images/{image_id}/original"
    assert keys.generation_prefix(image_id, gen) == f"images/{image_id}/pyramids/{gen}/"
    assert keys.pyramid_key(image_id, gen, "image") == f"images/{image_id}/pyramids/{gen}/image.zip"
    assert (
        keys.index_key(image_id, gen, "image")
        == f"images/{image_id}/pyramids/{gen}/image.index.json"
    )


@pytest.mark.parametrize("text", ODD_TEXT)
def test_image_keys_refuse_text_that_is_not_an_id(text: str) -> None:
    """A non-id never becomes part of a key: NotFound, as for an image that does not exist."""
    for build in (keys.image_prefix, keys.manifest_key, keys.original_key):
        with pytest.raises(NotFound):
            build(text)
    with pytest.raises(NotFound):
        keys.pyramid_key(text, new_generation(), "image")


@pytest.mark.parametrize("text", ODD_TEXT)
def test_pyramid_keys_refuse_text_that_is_not_a_generation_or_name(text: str) -> None:
    """Generations must be generation ids and names one of the fixed pyramid names."""
    image_id, gen = new_image_id(), new_generation()
    with pytest.raises(NotFound):
        keys.generation_prefix(image_id, text)
    with pytest.raises(NotFound):
        keys.pyramid_key(image_id, gen, text)
    with pytest.raises(NotFound):
        keys.index_key(image_id, text, "image")


def test_an_image_id_is_not_a_generation() -> None:
    """The two id kinds are not interchangeable in keys."""
    image_id = new_image_id()
    with pytest.raises(NotFound):
        keys.generation_prefix(image_id, image_id)
    with pytest.raises(NotFound):
        keys.manifest_key(new_generation())
