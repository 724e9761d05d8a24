"""Image records: the entry function, newest-first listing, deletion and re-conversion."""

from collections import Counter
from typing import Any

import pytest

from plexzoom.core import keys
from plexzoom.core.errors import Conflict, NotFound
from plexzoom.core.formats import PNG
from plexzoom.core.ids import is_generation, is_image_id, new_generation, new_image_id
from plexzoom.core.images import (
    delete_image,
    list_images,
    reconvert_image,
    start_image,
    submit_image,
)
from plexzoom.core.manifest import Manifest, Status, read_manifest, write_manifest
from plexzoom.core.storage import Storage


class RecordingEnqueue:
    """An enqueue that records ids and the status each manifest had when it was enqueued."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.ids: list[str] = []
        self.seen_status: list[str] = []

    def __call__(self, image_id: str) -> None:
        self.ids.append(image_id)
        self.seen_status.append(read_manifest(self.storage, image_id).status)


class CountingStorage:
    """Wraps a storage and counts calls by method name."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted


def _stored_image(storage: Storage, ms: int, status: Status = "ready") -> Manifest:
    """A manifest for an image uploaded at ``ms`` (epoch milliseconds)."""
    manifest = Manifest(id=new_image_id(now_ms=ms), status=status, generation=new_generation())
    write_manifest(storage, manifest)
    return manifest


def test_start_image_writes_an_uploading_record(storage: Storage) -> None:
    """start_image creates a fresh id and generation, keeps the file name, writes the record."""
    manifest = start_image(storage, "My Slide.tif")
    assert is_image_id(manifest.id)
    assert is_generation(manifest.generation)
    assert manifest.status == "uploading"
    assert manifest.filename == "My Slide.tif"
    assert read_manifest(storage, manifest.id) == manifest
    assert storage.list_keys("") == [keys.manifest_key(manifest.id)]


def test_submit_image_records_the_original_and_enqueues_after_writing(storage: Storage) -> None:
    """The record is 'queued' in storage before the job is enqueued (a fast worker sees it)."""
    enqueue = RecordingEnqueue(storage)
    manifest = start_image(storage, None)
    submitted = submit_image(storage, manifest, PNG, 4321, enqueue)
    assert enqueue.ids == [manifest.id]
    assert enqueue.seen_status == ["queued"]
    stored = read_manifest(storage, manifest.id)
    assert stored == submitted
    assert (stored.status, stored.format, stored.size) == ("queued", "png", 4321)


def test_list_images_is_newest_first_in_pages(storage: Storage) -> None:
    """Paging with next_cursor walks every image once, newest first, then stops."""
    made = [_stored_image(storage, 1_700_000_000_000 + 1000 * i) for i in range(7)]
    expected = [m.id for m in reversed(made)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = list_images(storage, 3, cursor)
        assert len(page.images) <= 3
        seen += [m.id for m in page.images]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected


def test_an_exactly_full_last_page_has_no_cursor(storage: Storage) -> None:
    """With limit equal to the number of images there is no next page."""
    made = [_stored_image(storage, 1_700_000_000_000 + i) for i in range(4)]
    page = list_images(storage, 4)
    assert [m.id for m in page.images] == [m.id for m in reversed(made)]
    assert page.next_cursor is None
    assert list_images(storage, 3).next_cursor is not None


def test_listing_reads_one_listing_and_one_page_of_manifests(storage: Storage) -> None:
    """A page costs one listing call plus one read per image on it, however many images exist."""
    for i in range(12):
        _stored_image(storage, 1_700_000_000_000 + i)
    counting = CountingStorage(storage)
    page = list_images(counting, 5)  # type: ignore[arg-type]
    assert len(page.images) == 5
    assert counting.calls == Counter({"list_children": 1, "get_bytes": 5})
    counting.calls.clear()
    list_images(counting, 5, page.next_cursor)  # type: ignore[arg-type]
    assert counting.calls == Counter({"list_children": 1, "get_bytes": 5})


def test_listing_skips_folders_without_a_manifest(storage: Storage) -> None:
    """An image whose record is gone (deleted mid-listing) is skipped, not an error."""
    kept = _stored_image(storage, 1_700_000_000_000)
    storage.put_bytes(keys.original_key(new_image_id(now_ms=1_700_000_000_500)), b"orphan")
    assert [m.id for m in list_images(storage, 10).images] == [kept.id]


@pytest.mark.parametrize("cursor", ["", "../etc", "%00", "x" * 64, "not-an-id"])
def test_odd_cursors_start_from_the_newest(storage: Storage, cursor: str) -> None:
    """A cursor that is not an id is ignored rather than used in a storage call."""
    made = _stored_image(storage, 1_700_000_000_000)
    assert [m.id for m in list_images(storage, 5, cursor).images] == [made.id]


def test_delete_image_removes_everything_of_that_image(storage: Storage) -> None:
    """Original, pyramids and record go; other images stay."""
    doomed = _stored_image(storage, 1_700_000_000_000)
    other = _stored_image(storage, 1_700_000_000_001)
    storage.put_bytes(keys.original_key(doomed.id), b"pixels")
    storage.put_bytes(keys.pyramid_key(doomed.id, doomed.generation, "image"), b"zip")
    delete_image(storage, doomed.id)
    assert storage.list_keys(keys.image_prefix(doomed.id)) == []
    assert storage.list_keys("") == [keys.manifest_key(other.id)]
    with pytest.raises(NotFound):
        read_manifest(storage, doomed.id)


def test_deleting_an_unknown_image_is_not_found(storage: Storage) -> None:
    """Unknown and malformed ids are NotFound; nothing is touched."""
    kept = _stored_image(storage, 1_700_000_000_000)
    for image_id in (new_image_id(), "../" + kept.id, ""):
        with pytest.raises(NotFound):
            delete_image(storage, image_id)
    assert storage.list_keys("") == [keys.manifest_key(kept.id)]


@pytest.mark.parametrize("status", ["ready", "failed"])
def test_reconvert_makes_a_new_generation_and_enqueues(storage: Storage, status: Status) -> None:
    """A finished image is queued again under a new generation, with a clean slate."""
    manifest = _stored_image(storage, 1_700_000_000_000, status)
    manifest.error, manifest.attempts = "old error", 3
    write_manifest(storage, manifest)
    enqueue = RecordingEnqueue(storage)
    again = reconvert_image(storage, manifest.id, enqueue)
    assert again.generation != manifest.generation
    assert is_generation(again.generation)
    assert (again.status, again.error, again.attempts, again.progress) == ("queued", None, 0, 0.0)
    assert read_manifest(storage, manifest.id) == again
    assert enqueue.ids == [manifest.id]
    assert enqueue.seen_status == ["queued"]


@pytest.mark.parametrize("status", ["uploading", "queued", "processing"])
def test_reconvert_while_busy_is_a_conflict(storage: Storage, status: Status) -> None:
    """An image being uploaded or converted cannot be converted again; nothing changes."""
    manifest = _stored_image(storage, 1_700_000_000_000, status)
    enqueue = RecordingEnqueue(storage)
    with pytest.raises(Conflict):
        reconvert_image(storage, manifest.id, enqueue)
    assert enqueue.ids == []
    assert read_manifest(storage, manifest.id).generation == manifest.generation


def test_reconvert_unknown_image_is_not_found(storage: Storage) -> None:
    """Re-converting an image that does not exist is NotFound."""
    with pytest.raises(NotFound):
        reconvert_image(storage, new_image_id(), RecordingEnqueue(storage))
