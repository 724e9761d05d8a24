"""The reconciler over every storage backend: stalled jobs queued again, unnamed data removed."""

from datetime import timedelta

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.ids import new_generation, new_image_id
from plexzoom.core.images import delete_image, start_image
from plexzoom.core.jobs import claim, now
from plexzoom.core.manifest import read_manifest, write_manifest
from plexzoom.core.reconcile import reconcile
from plexzoom.core.storage import Storage
from tests.conftest import quadrant_bytes
from tests.core.test_convert import pyramid_keys, store_original


def test_a_fresh_queued_image_is_left_to_its_message(storage: Storage) -> None:
    """Within the grace period a queued image is not queued twice."""
    store_original(storage, quadrant_bytes())
    sent: list[str] = []
    assert reconcile(storage, sent.append, queued_grace_s=60).requeued == []
    assert sent == []


def test_a_queued_image_past_its_grace_is_queued_once(storage: Storage) -> None:
    """A queued image nobody touched (its message was lost) is enqueued, once per grace."""
    image_id = store_original(storage, quadrant_bytes())
    sent: list[str] = []
    assert reconcile(storage, sent.append, queued_grace_s=0).requeued == [image_id]
    assert reconcile(storage, sent.append, queued_grace_s=60).requeued == []
    assert sent == [image_id]


def test_a_job_with_a_live_lease_is_left_alone(storage: Storage) -> None:
    """A long healthy conversion (lease renewed) is never started twice."""
    image_id = store_original(storage, quadrant_bytes())
    claim(storage, image_id, "running", 60, 3)
    sent: list[str] = []
    reconcile(storage, sent.append, queued_grace_s=0)
    assert sent == []
    assert read_manifest(storage, image_id).lease_holder == "running"


def test_a_dead_job_is_queued_again_and_converts(storage: Storage) -> None:
    """Processing with an expired lease: queued again; the next run counts attempt 2."""
    image_id = store_original(storage, quadrant_bytes())
    claim(storage, image_id, "dead", 60, 3)
    manifest = read_manifest(storage, image_id)
    manifest.lease_until = now() - timedelta(seconds=1)
    write_manifest(storage, manifest)
    sent: list[str] = []
    assert reconcile(storage, sent.append, queued_grace_s=60).requeued == [image_id]
    assert read_manifest(storage, image_id).status == "queued"
    done = convert_image(storage, sent[0], ConvertOptions())
    assert (done.status, done.attempts) == ("ready", 2)
    assert set(storage.list_keys("")) == pyramid_keys(image_id, done.generation)


def test_storage_no_manifest_names_is_removed(storage: Storage) -> None:
    """Leftovers of a cut-short delete and unnamed generations go; committed data stays."""
    image_id = store_original(storage, quadrant_bytes())
    done = convert_image(storage, image_id, ConvertOptions())
    stray = keys.pyramid_key(image_id, new_generation(), "image")
    storage.put_bytes(stray, b"half a pyramid")
    orphan = keys.original_key(new_image_id())
    storage.put_bytes(orphan, b"an original whose manifest was deleted")
    reconcile(storage, lambda _id: None, queued_grace_s=60)
    assert set(storage.list_keys("")) == pyramid_keys(image_id, done.generation)


def test_an_upload_whose_web_process_died_is_removed(storage: Storage) -> None:
    """`uploading` and untouched past the stale time: its partial original goes with it; a
    live upload (touched a moment ago) stays."""
    stale = start_image(storage, "cut-off.tif")
    storage.put_bytes(keys.original_key(stale.id), b"II*\x00partial")
    live = start_image(storage, "streaming.tif")
    manifest = read_manifest(storage, stale.id)
    manifest.updated = now() - timedelta(seconds=601)
    storage.put_bytes(keys.manifest_key(stale.id), manifest.model_dump_json().encode())
    done = reconcile(storage, [].append, queued_grace_s=60, upload_stale_s=600)
    assert done.removed == [keys.image_prefix(stale.id)]
    assert storage.list_keys(keys.image_prefix(stale.id)) == []
    assert read_manifest(storage, live.id).status == "uploading"


def test_a_deleted_image_is_not_removed_again_each_pass(storage: Storage) -> None:
    """SeaweedFS still lists an emptied folder: a pass finds nothing there to remove."""
    image_id = start_image(storage, "gone.png").id
    delete_image(storage, image_id)
    assert reconcile(storage, lambda _id: None, queued_grace_s=0).removed == []
