"""Listing objects with their tags, and moving one on the condition of its tag: every backend."""

import os

import pytest

from plexzoom.core.errors import NotFound, WriteConflict
from plexzoom.core.storage import LocalStorage, Storage
from plexzoom.core.storage.s3 import PART_SIZE
from tests.core.test_storage_contract import _pattern


def test_list_objects_names_every_object_under_the_prefix(storage: Storage) -> None:
    """Keys at any depth, ascending, with sizes; a tag stays while the object does."""
    storage.put_bytes("inbox/b/deep/one.tif", b"12345")
    storage.put_bytes("inbox/a.png", b"")
    storage.put_bytes("images/x/original", b"not listed")
    listed = list(storage.list_objects("inbox/"))
    assert [(o.key, o.size) for o in listed] == [("inbox/a.png", 0), ("inbox/b/deep/one.tif", 5)]
    assert all(o.etag and '"' not in o.etag for o in listed)
    assert [o.etag for o in storage.list_objects("inbox/")] == [o.etag for o in listed]
    assert list(storage.list_objects("nothing/")) == []


def test_stat_tells_what_a_listing_tells(storage: Storage) -> None:
    """One object's tag, size and time, as listed; NotFound for a missing key."""
    storage.put_bytes("inbox/a.tif", b"12345")
    (listed,) = storage.list_objects("inbox/")
    found = storage.stat("inbox/a.tif")
    assert (found.key, found.etag, found.size) == (listed.key, listed.etag, listed.size)
    assert abs((found.modified - listed.modified).total_seconds()) < 1
    with pytest.raises(NotFound):
        storage.stat("inbox/missing.tif")


def test_a_rewritten_object_has_another_tag(storage: Storage) -> None:
    """A new version (other bytes) is another identity."""
    storage.put_bytes("inbox/a.tif", b"first")
    (before,) = storage.list_objects("inbox/")
    storage.put_bytes("inbox/a.tif", b"second version")
    (after,) = storage.list_objects("inbox/")
    assert after.etag != before.etag


def test_move_if_match_moves_the_object(storage: Storage) -> None:
    """The bytes arrive under the new key and leave the old one."""
    storage.put_bytes("inbox/a.tif", b"pixels")
    (found,) = storage.list_objects("inbox/")
    storage.move_if_match("inbox/a.tif", "images/x/original", found.etag)
    assert storage.get_bytes("images/x/original") == b"pixels"
    assert not storage.exists("inbox/a.tif")


def test_move_if_match_refuses_a_changed_or_missing_object(storage: Storage) -> None:
    """A stale tag is a conflict and moves nothing; a missing object is NotFound."""
    storage.put_bytes("inbox/a.tif", b"first")
    (found,) = storage.list_objects("inbox/")
    storage.put_bytes("inbox/a.tif", b"second version")
    with pytest.raises(WriteConflict):
        storage.move_if_match("inbox/a.tif", "images/x/original", found.etag)
    assert storage.get_bytes("inbox/a.tif") == b"second version"
    assert not storage.exists("images/x/original")
    with pytest.raises(NotFound):
        storage.move_if_match("inbox/gone.tif", "images/x/original", found.etag)


def test_move_if_match_copies_large_objects_in_parts(storage: Storage) -> None:
    """Past the multipart threshold S3 copies in parts, each on the condition."""
    data = _pattern(PART_SIZE + 1024)
    storage.put_bytes("inbox/big.tif", data)
    (found,) = storage.list_objects("inbox/")
    storage.move_if_match("inbox/big.tif", "images/x/original", found.etag)
    assert storage.get_bytes("images/x/original") == data
    assert list(storage.list_objects("inbox/")) == []


@pytest.mark.parametrize("backend", ["local"])
def test_symbolic_links_are_neither_listed_nor_moved(storage: Storage) -> None:
    """A link in the folder (to a file outside it, say) is not an object of the store."""
    assert isinstance(storage, LocalStorage)
    secret = storage.root.parent / "secret.txt"
    secret.write_bytes(b"outside")
    (storage.root / "inbox").mkdir()
    os.symlink(secret, storage.root / "inbox" / "link.tif")
    os.symlink(storage.root.parent, storage.root / "inbox" / "folder")
    storage.put_bytes("inbox/real.tif", b"real")
    assert [o.key for o in storage.list_objects("inbox/")] == ["inbox/real.tif"]
    with pytest.raises(WriteConflict):
        storage.move_if_match("inbox/link.tif", "images/x/original", "0-0")
