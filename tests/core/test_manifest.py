"""The manifest: the one record of an image, written atomically and read back whole."""

import json
import time

import pytest

from plexzoom.core import keys
from plexzoom.core.errors import NotFound
from plexzoom.core.ids import new_generation, new_image_id
from plexzoom.core.manifest import Channel, Manifest, Pyramid, read_manifest, write_manifest
from plexzoom.core.storage import Storage


def _manifest(**fields: object) -> Manifest:
    return Manifest(id=new_image_id(), status="queued", generation=new_generation(), **fields)


def test_a_manifest_round_trips_through_storage(storage: Storage) -> None:
    """Every field, channels and pyramids included, reads back as written."""
    gen = new_generation()
    manifest = _manifest(
        filename="slide 1 (copy).tif",
        format="tiff",
        size=123,
        width=1000,
        height=800,
        channels=[Channel(index=0, name="DAPI", color="#0000ff")],
        pyramids={
            "image": Pyramid(
                name="image",
                generation=gen,
                width=1000,
                height=800,
                tile_size=254,
                overlap=1,
                format="jpeg",
                levels=11,
                size=999,
            )
        },
    )
    write_manifest(storage, manifest)
    assert read_manifest(storage, manifest.id) == manifest
    stored = json.loads(storage.get_bytes(keys.manifest_key(manifest.id)))
    assert stored["status"] == "queued"
    assert stored["pyramids"]["image"]["generation"] == gen


def test_writing_updates_the_time_and_keeps_the_creation_time(storage: Storage) -> None:
    """'updated' moves on with each write; 'created' stays."""
    manifest = _manifest()
    write_manifest(storage, manifest)
    first = read_manifest(storage, manifest.id)
    time.sleep(0.01)
    manifest.status = "processing"
    write_manifest(storage, manifest)
    second = read_manifest(storage, manifest.id)
    assert second.status == "processing"
    assert second.created == first.created
    assert second.updated > first.updated
    assert second.created.tzinfo is not None


def test_the_manifest_is_the_only_object_written(storage: Storage) -> None:
    """Writing a manifest writes exactly images/{id}/manifest.json."""
    manifest = _manifest(filename="../../evil name.tif")
    write_manifest(storage, manifest)
    assert storage.list_keys("") == [f"images/{manifest.id}/manifest.json"]


def test_reading_an_unknown_or_malformed_id_is_not_found(storage: Storage) -> None:
    """Absent images and non-ids both read as NotFound with the same user-facing message."""
    for image_id in (new_image_id(), "../etc", "", "x" * 300):
        with pytest.raises(NotFound) as caught:
            read_manifest(storage, image_id)
        assert caught.value.message == "No image has this id."
