"""The reconciler over every storage backend: stalled jobs queued again, unnamed data removed."""

from datetime import timedelta

from plexzoom.core import keys
from plexzoom.core.convert import ConvertOptions, convert_image
from plexzoom.core.ids import new_generation, new_image_id
from plexzoom.core.images import delete_image, start_image
from plexzoom.core.jobs import claim, now
from plexzoom.core.manifest import read_manifest, write_manifest
from plexzoom.core.reconcile import Reconciled, abort_stranded_uploads, reconcile
from plexzoom.core.storage import Storage
from plexzoom.core.storage.parts import MIN_PART_SIZE
from plexzoom.core.uploads import create_upload
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


def _touched_ago(storage: Storage, image_id: str, seconds: float) -> None:
    manifest = read_manifest(storage, image_id)
    manifest.updated = now() - timedelta(seconds=seconds)
    storage.put_bytes(keys.manifest_key(image_id), manifest.model_dump_json().encode())


def test_a_resumable_upload_lives_until_its_ttl(storage: Storage) -> None:
    """An upload in parts outlives the streamed uploads' stale time (its client may come back
    days later); past its TTL its parts and record go."""
    kept = create_upload(storage, 3 * MIN_PART_SIZE, owner="", cap=10**12)
    gone = create_upload(storage, 3 * MIN_PART_SIZE, owner="", cap=10**12)
    for manifest in (kept, gone):
        assert manifest.upload is not None
        storage.put_part(keys.original_key(manifest.id), manifest.upload.upload_id, 1, b"part")
    _touched_ago(storage, kept.id, 3600)
    _touched_ago(storage, gone.id, 7200)
    done = reconcile(storage, [].append, upload_stale_s=600, resumable_ttl_s=5400)
    assert done.removed == [keys.image_prefix(gone.id)]
    assert done.aborted == [keys.original_key(gone.id)]
    assert storage.list_keys(keys.image_prefix(gone.id)) == []
    assert read_manifest(storage, kept.id).upload is not None
    assert [u.key for u in storage.list_multipart_uploads("")] == [keys.original_key(kept.id)]


def test_multipart_uploads_no_record_names_are_aborted(storage: Storage, backend: str) -> None:
    """Parts of an original whose record is gone (or names another upload) are aborted once
    they are older than the stale time; the open upload of a record and a streamed upload's
    parts stay."""
    orphan = keys.original_key(new_image_id())
    stray_id = storage.create_multipart(orphan)
    resumable = create_upload(storage, MIN_PART_SIZE, owner="", cap=10**12)
    assert resumable.upload is not None
    extra = storage.create_multipart(keys.original_key(resumable.id))
    streamed = start_image(storage, "streaming.tif")
    streaming_id = storage.create_multipart(keys.original_key(streamed.id))
    if backend not in ("s3-server", "s3-mock"):  # moto dates every upload 2010-11-10
        assert reconcile(storage, [].append, upload_stale_s=3600).aborted == []  # all young
    done = Reconciled()
    abort_stranded_uploads(storage, -1, done)  # (a pass would remove the streamed record too)
    assert sorted(done.aborted) == sorted([orphan, keys.original_key(resumable.id)])
    left = {(u.key, u.upload_id) for u in storage.list_multipart_uploads("")}
    assert left == {
        (keys.original_key(resumable.id), resumable.upload.upload_id),
        (keys.original_key(streamed.id), streaming_id),
    }
    assert stray_id and extra
