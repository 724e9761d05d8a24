"""The inbox on every backend: objects become images once each, junk and half-written files
never, and a claim whose taker died is completed by the next scan or the reconciler."""

import os
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plexzoom.core import keys
from plexzoom.core.images import start_image
from plexzoom.core.inbox import (
    SKIPPED,
    TAKEN,
    Claim,
    Inbox,
    complete_claim,
    scan_inbox,
    source_digest,
    take_object,
)
from plexzoom.core.manifest import Source, read_manifest
from plexzoom.core.reconcile import reconcile
from plexzoom.core.storage import LocalStorage, S3Storage, Storage
from tests.conftest import quadrant_bytes

PNG = quadrant_bytes("png", 64, 48)


class Queue:
    """The enqueue function: records the ids it was given."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, image_id: str) -> None:
        self.ids.append(image_id)


def inbox_of(storage: Storage, **options: Any) -> Inbox:
    """The inbox of this store (the bucket's name on S3)."""
    bucket = storage.bucket if isinstance(storage, S3Storage) else None
    return Inbox(prefix="inbox/", bucket=bucket, **options)


def images(storage: Storage) -> list[str]:
    """Ids of every image record in the store (SeaweedFS lists emptied folders too)."""
    ids = storage.list_children(keys.IMAGES, "", 1000)
    return [i for i in ids if storage.exists(keys.manifest_key(i))]


def drop(storage: Storage, key: str, data: bytes) -> None:
    """Put an object into the store as a scanner or a lab's copy would (local: a plain file)."""
    if isinstance(storage, LocalStorage):
        path = storage.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    else:
        storage.put_bytes(key, data)


def test_an_object_becomes_one_queued_image(storage: Storage) -> None:
    """Claimed, recorded with its source, moved to the original and queued; then never again."""
    drop(storage, "inbox/lab one/scan 1.png", PNG)
    (listed,) = storage.list_objects("inbox/")
    queue = Queue()
    scanned = scan_inbox(storage, inbox_of(storage), queue)
    (image_id,) = scanned.taken
    assert queue.ids == [image_id] and images(storage) == [image_id]
    manifest = read_manifest(storage, image_id)
    assert (manifest.status, manifest.format, manifest.size) == ("queued", "png", len(PNG))
    assert manifest.filename == "scan 1.png"
    local = isinstance(storage, LocalStorage)
    assert manifest.source == Source(
        bucket=None if local else inbox_of(storage).bucket,
        key="lab one/scan 1.png" if local else "inbox/lab one/scan 1.png",
        etag=listed.etag,
        size=len(PNG),
    )
    assert storage.get_bytes(keys.original_key(image_id)) == PNG
    assert list(storage.list_objects("inbox/")) == []
    assert scan_inbox(storage, inbox_of(storage), queue).taken == []
    assert queue.ids == [image_id]


def test_junk_and_half_written_files_never_become_images(storage: Storage) -> None:
    """Empty objects and desktop files are skipped once for good (a claim records it); hidden
    and temporary names are not taken while they keep them."""
    for key in ("Thumbs.db", "empty.tif", ".DS_Store", "scan.tif.part", ".scan.tif.AbC123"):
        drop(storage, f"inbox/{key}", b"" if key == "empty.tif" else PNG)
    drop(storage, "inbox/.hidden/scan.png", PNG)
    scanned = scan_inbox(storage, inbox_of(storage), Queue())
    assert (scanned.taken, scanned.skipped) == ([], 2)
    assert images(storage) == []
    assert len(storage.list_keys(SKIPPED)) == 2
    assert len(list(storage.list_objects("inbox/"))) == 6  # nothing is removed


def test_a_scan_of_objects_seen_before_reads_nothing(storage: Storage) -> None:
    """Skipped and half-written objects cost their listing only: no read, no write."""
    drop(storage, "inbox/Thumbs.db", PNG)
    drop(storage, "inbox/scan.tif.part", PNG)
    scan_inbox(storage, inbox_of(storage), Queue())
    counting = Counting(storage)
    scan_inbox(counting, inbox_of(storage), Queue())  # type: ignore[arg-type]
    assert set(counting.calls) == {"list_objects", "list_keys"}, counting.calls


class Counting:
    """A store that records which of its methods were called."""

    def __init__(self, inner: Storage) -> None:
        self.inner, self.calls = inner, list[str]()

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.inner, name)


def test_scanners_at_once_make_one_image(storage: Storage) -> None:
    """Four scanners started together on one object: one image, queued once."""
    drop(storage, "inbox/scan.png", PNG)
    queue, start = Queue(), threading.Barrier(4)

    def scan() -> None:
        start.wait()
        scan_inbox(storage, inbox_of(storage), queue)

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(images(storage)) == 1
    assert queue.ids == images(storage)


def test_a_file_that_is_not_an_image_fails_and_is_kept(storage: Storage) -> None:
    """Named like an image, holding text: a failed image with the reason; its bytes kept."""
    drop(storage, "inbox/notes.tif", b"these are not pixels" * 10)
    queue = Queue()
    (image_id,) = scan_inbox(storage, inbox_of(storage), queue).taken
    manifest = read_manifest(storage, image_id)
    assert manifest.status == "failed" and "Supported formats" in str(manifest.error)
    assert storage.get_bytes(keys.original_key(image_id)) == b"these are not pixels" * 10
    assert queue.ids == []


def stale_claim(storage: Storage, key: str, age_s: float) -> Claim:
    """A claim written ``age_s`` ago by a taker that died before it created the image."""
    (listed,) = [o for o in storage.list_objects("inbox/") if o.key == key]
    inbox = inbox_of(storage)
    source = Source(
        bucket=inbox.bucket,
        key=key if inbox.bucket else key.removeprefix("inbox/"),
        etag=listed.etag,
        size=listed.size,
    )
    claim = Claim(
        image_id="7ybqaaaaaaaaaaaaaaaaaaaaaa",
        key=key,
        source=source,
        claimed=datetime.now(UTC) - timedelta(seconds=age_s),
    )
    storage.put_bytes(TAKEN + f"{source_digest(source)}.json", claim.model_dump_json().encode())
    return claim


def test_a_claim_whose_taker_died_is_completed_after_the_grace(storage: Storage) -> None:
    """Claimed, then nothing: a scan within the grace period waits; after it, completes."""
    drop(storage, "inbox/scan.png", PNG)
    claim = stale_claim(storage, "inbox/scan.png", age_s=60)
    queue = Queue()
    assert scan_inbox(storage, inbox_of(storage, grace_s=120), queue).resumed == []
    assert images(storage) == []
    scanned = scan_inbox(storage, inbox_of(storage, grace_s=30), queue)
    assert scanned.resumed == [claim.image_id] and queue.ids == [claim.image_id]
    assert read_manifest(storage, claim.image_id).status == "queued"


def test_an_image_moved_but_not_queued_is_queued_by_the_reconciler(storage: Storage) -> None:
    """The taker died after moving the object: the reconciler completes the claim once."""
    drop(storage, "inbox/scan.png", PNG)
    claim = stale_claim(storage, "inbox/scan.png", age_s=600)
    start_image(storage, "scan.png", None, claim.source, claim.image_id)
    storage.move_if_match("inbox/scan.png", keys.original_key(claim.image_id), claim.source.etag)
    queue = Queue()
    assert reconcile(storage, queue, queued_grace_s=3600).requeued == []  # within the grace
    assert reconcile(storage, queue, queued_grace_s=0).requeued == [claim.image_id]
    assert reconcile(storage, queue, queued_grace_s=3600).requeued == []  # queued now
    assert queue.ids == [claim.image_id]
    assert read_manifest(storage, claim.image_id).status == "queued"


def test_an_object_deleted_before_it_was_taken_leaves_no_image(storage: Storage) -> None:
    """Claimed, then removed by its owner: the claim's image is not kept."""
    drop(storage, "inbox/scan.png", PNG)
    claim = stale_claim(storage, "inbox/scan.png", age_s=600)
    storage.delete("inbox/scan.png")
    assert complete_claim(storage, claim, Queue()) is None
    assert images(storage) == []


def test_awkward_keys_become_images_under_their_own_prefix(storage: Storage) -> None:
    """Spaces, unicode, '+', '%', 1,000-byte keys: each an image; nothing lands outside images/.

    (Keys with '..' segments cannot even be stored everywhere: SeaweedFS refuses them and moto
    resolves them; plexzoom never makes a path or a key of its own from an inbox key.)
    """
    names = ["a b+c%20(1).png", "Präparat µm 😀.png", "/".join(["x" * 200] * 5)[:982] + "..png"]
    assert len(f"inbox/{names[-1]}".encode()) == 993  # S3 allows 1,024
    for name in names:
        drop(storage, f"inbox/{name}", PNG)
    taken = scan_inbox(storage, inbox_of(storage), Queue()).taken
    assert len(taken) == len(names)
    assert {read_manifest(storage, i).filename for i in taken} == {n.split("/")[-1] for n in names}
    outside = [k for k in storage.list_keys("") if not k.startswith(("images/", "claims/"))]
    assert outside == []
    assert images(storage) == sorted(taken)


@pytest.mark.parametrize("backend", ["local"])
def test_a_local_file_is_taken_once_it_stops_changing(storage: Storage) -> None:
    """A file written slowly into the folder is not taken while its time is recent."""
    assert isinstance(storage, LocalStorage)
    folder = storage.root / "inbox"
    folder.mkdir()
    path = folder / "slow.png"
    with path.open("wb") as writer:
        writer.write(PNG[: len(PNG) // 2])
        writer.flush()
        inbox = inbox_of(storage, settle_s=3600)
        assert scan_inbox(storage, inbox, Queue()).taken == []  # still being written
        writer.write(PNG[len(PNG) // 2 :])
    past = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(path, (past, past))  # an hour and more without a change
    (image_id,) = scan_inbox(storage, inbox, Queue()).taken
    assert storage.get_bytes(keys.original_key(image_id)) == PNG


def test_an_event_takes_its_object_once(storage: Storage) -> None:
    """An event names a key: looked up in storage, taken like a scan would, once; a second
    event for it, and a scan after it, find it taken."""
    inbox, queue = inbox_of(storage), Queue()
    assert take_object(storage, inbox, "inbox/scan.png", queue) is None  # not there yet
    drop(storage, "inbox/scan.png", PNG)
    image_id = take_object(storage, inbox, "inbox/scan.png", queue)
    assert image_id is not None and queue.ids == [image_id]
    assert take_object(storage, inbox, "inbox/scan.png", queue) is None
    assert scan_inbox(storage, inbox, queue).taken == []
    assert images(storage) == [image_id]
    assert read_manifest(storage, image_id).status == "queued"


def test_an_event_outside_the_inbox_or_for_junk_takes_nothing(storage: Storage) -> None:
    """Keys elsewhere (plexzoom's own, say) are never taken; junk is skipped for good."""
    drop(storage, "inbox/Thumbs.db", PNG)
    storage.put_bytes("elsewhere/scan.png", PNG)
    inbox, queue = inbox_of(storage), Queue()
    assert take_object(storage, inbox, "elsewhere/scan.png", queue) is None
    assert take_object(storage, inbox, "inbox/Thumbs.db", queue) is None
    assert images(storage) == [] and queue.ids == []
    assert len(storage.list_keys(SKIPPED)) == 1


def test_a_listing_and_an_events_lookup_name_the_same_claim() -> None:
    """A lookup may carry the version id, a listing does not: the claim is the same."""
    listed = Source(bucket="slides", key="inbox/a.tif", etag="e1", size=3)
    looked_up = listed.model_copy(update={"version_id": "3HL4kqtJlcpXroDTDmJ"})
    assert source_digest(listed) == source_digest(looked_up)
    assert source_digest(listed) != source_digest(listed.model_copy(update={"etag": "e2"}))
