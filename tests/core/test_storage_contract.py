"""The one storage contract, run against every backend: a folder, SeaweedFS, moto's S3 server
and moto's mock."""

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from plexzoom.core.errors import NotFound, WriteConflict
from plexzoom.core.storage import LocalStorage, S3Storage, Storage
from plexzoom.core.storage.s3 import PART_SIZE
from tests.conftest import leftover_uploads

ALL_BYTES = bytes(range(256)) * 4


def _pattern(size: int) -> bytes:
    """Bytes whose every position is distinct from its neighbours' (a shifted slice shows)."""
    block = hashlib.sha256(b"plexzoom").digest() * 64  # 2 KiB
    whole, rest = divmod(size, len(block))
    counter = b"".join(i.to_bytes(4, "big") + block[4:] for i in range(whole))
    return counter + block[:rest]


def _write_in_chunks(storage: Storage, key: str, data: bytes, chunk: int) -> None:
    writer = storage.open_writer(key)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
    writer.commit()


def test_put_then_get_returns_the_same_bytes(storage: Storage) -> None:
    """Every byte value survives a round trip; a second put replaces the object."""
    storage.put_bytes("images/a/original", ALL_BYTES, "application/octet-stream")
    assert storage.get_bytes("images/a/original") == ALL_BYTES
    storage.put_bytes("images/a/original", b"second")
    assert storage.get_bytes("images/a/original") == b"second"


def test_empty_objects_are_objects(storage: Storage) -> None:
    """A zero-byte object exists and has size 0."""
    storage.put_bytes("images/a/empty", b"")
    assert storage.exists("images/a/empty")
    assert storage.size("images/a/empty") == 0
    assert storage.get_bytes("images/a/empty") == b""


@pytest.mark.parametrize(("start", "length"), [(0, 1), (0, 1024), (1, 255), (500, 24), (1023, 1)])
def test_get_range_returns_exactly_the_requested_bytes(
    storage: Storage, start: int, length: int
) -> None:
    """get_range(start, length) is the slice [start, start + length)."""
    storage.put_bytes("images/a/blob", ALL_BYTES)
    assert storage.get_range("images/a/blob", start, length) == ALL_BYTES[start : start + length]


def test_missing_keys_raise_not_found(storage: Storage, tmp_path: Path) -> None:
    """Reads of absent objects raise NotFound (never a library error); deleting them is fine."""
    storage.put_bytes("images/present/original", b"x")
    for missing in ("images/absent/original", "images/present/other"):
        with pytest.raises(NotFound):
            storage.get_bytes(missing)
        with pytest.raises(NotFound):
            storage.get_range(missing, 0, 1)
        with pytest.raises(NotFound):
            storage.size(missing)
        with pytest.raises(NotFound):
            storage.download_file(missing, tmp_path / "out")
        assert not storage.exists(missing)
        storage.delete(missing)
    assert storage.get_bytes("images/present/original") == b"x"


def test_a_key_that_is_only_a_prefix_of_others_is_missing(
    storage: Storage, backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """'images/a' is no object when only 'images/a/original' exists: reads say NotFound."""
    storage.put_bytes("images/a/original", b"x")
    assert not storage.exists("images/a")
    with pytest.raises(NotFound):
        storage.get_bytes("images/a")
    with pytest.raises(NotFound):
        storage.size("images/a")
    with pytest.raises(NotFound):
        storage.get_range("images/a", 0, 1)
    with pytest.raises(NotFound):
        storage.download_file("images/a", tmp_path / "out")
    storage.delete("images/a")
    assert storage.get_bytes("images/a/original") == b"x"


def test_streamed_write_over_several_parts_is_byte_identical(storage: Storage) -> None:
    """A write of 2 parts and a bit, in chunks that straddle part boundaries, reads back intact."""
    data = _pattern(2 * PART_SIZE + 12_345)
    _write_in_chunks(storage, "images/big/original", data, chunk=3 * 1024 * 1024 + 7)
    assert storage.size("images/big/original") == len(data)
    assert storage.get_bytes("images/big/original") == data
    for boundary in (PART_SIZE, 2 * PART_SIZE):
        got = storage.get_range("images/big/original", boundary - 100, 200)
        assert got == data[boundary - 100 : boundary + 100]
    assert leftover_uploads(storage) == []
    if isinstance(storage, S3Storage):
        etag = storage.client.head_object(Bucket=storage.bucket, Key="images/big/original")["ETag"]
        assert etag.strip('"').endswith("-3"), "the write should be a 3-part multipart upload"


def test_streamed_write_of_exactly_one_part(storage: Storage) -> None:
    """A write that ends exactly on a part boundary commits (no empty trailing part)."""
    data = _pattern(PART_SIZE)
    _write_in_chunks(storage, "images/one/original", data, chunk=PART_SIZE // 4)
    assert storage.get_bytes("images/one/original") == data
    assert leftover_uploads(storage) == []


def test_small_streamed_write(storage: Storage) -> None:
    """A write smaller than one part, including empty chunks, commits as one object."""
    writer = storage.open_writer("images/s/original")
    for piece in (b"", b"abc", b"", b"def"):
        writer.write(piece)
    writer.commit()
    assert storage.get_bytes("images/s/original") == b"abcdef"


def test_nothing_is_visible_before_commit(storage: Storage) -> None:
    """An open writer's object is neither readable nor listed until commit."""
    storage.put_bytes("images/w/manifest.json", b"{}")
    writer = storage.open_writer("images/w/original")
    writer.write(_pattern(PART_SIZE + 1))
    assert not storage.exists("images/w/original")
    assert storage.list_keys("images/w/") == ["images/w/manifest.json"]
    writer.commit()
    assert storage.list_keys("images/w/") == ["images/w/manifest.json", "images/w/original"]


@pytest.mark.parametrize("size", [10, PART_SIZE + 10], ids=["small", "multipart"])
def test_abort_leaves_no_object_and_no_upload(storage: Storage, size: int) -> None:
    """Aborting a write leaves no object, no multipart upload and no temp file."""
    writer = storage.open_writer("images/ab/original")
    writer.write(_pattern(size))
    if isinstance(storage, S3Storage) and size > PART_SIZE:
        assert leftover_uploads(storage) == ["images/ab/original"]  # the upload really started
    writer.abort()
    assert not storage.exists("images/ab/original")
    assert storage.list_keys("") == []
    assert leftover_uploads(storage) == []


@pytest.mark.parametrize("size", [10, PART_SIZE + 10], ids=["small", "multipart"])
def test_abort_after_commit_is_harmless(
    storage: Storage, backend: str, size: int, request: pytest.FixtureRequest
) -> None:
    """Cleanup code may abort a writer that already committed: no error, the object stays."""
    data = _pattern(size)
    writer = storage.open_writer("images/c/original")
    writer.write(data)
    writer.commit()
    writer.abort()
    assert storage.get_bytes("images/c/original") == data


def test_upload_file_and_download_file(storage: Storage, tmp_path: Path) -> None:
    """A local file goes up as one object and comes back identical (above boto3's threshold)."""
    data = _pattern(9 * 1024 * 1024 + 3)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    storage.upload_file("images/f/pyramids/g/image.zip", source)
    assert storage.size("images/f/pyramids/g/image.zip") == len(data)
    target = tmp_path / "target.bin"
    storage.download_file("images/f/pyramids/g/image.zip", target)
    assert target.read_bytes() == data
    assert leftover_uploads(storage) == []


def test_files_in_and_out_are_snapshots(storage: Storage, tmp_path: Path) -> None:
    """A downloaded file keeps its bytes when the object is replaced or deleted, and an uploaded
    object keeps its bytes when the local file goes (the local folder links, S3 copies)."""
    source = tmp_path / "source.bin"
    source.write_bytes(b"first")
    storage.upload_file("images/s/original", source)
    source.unlink()
    copy = tmp_path / "copy.bin"
    storage.download_file("images/s/original", copy)
    storage.put_bytes("images/s/original", b"second")
    assert copy.read_bytes() == b"first"
    assert storage.get_bytes("images/s/original") == b"second"
    storage.delete("images/s/original")
    assert copy.read_bytes() == b"first"


def test_size_and_exists(storage: Storage) -> None:
    """size is the byte count; exists follows puts and deletes."""
    assert not storage.exists("images/z/original")
    storage.put_bytes("images/z/original", b"12345")
    assert storage.exists("images/z/original")
    assert storage.size("images/z/original") == 5


def test_delete_removes_only_that_object(storage: Storage) -> None:
    """delete removes one key and leaves its neighbours."""
    storage.put_bytes("images/d/original", b"1")
    storage.put_bytes("images/d/manifest.json", b"2")
    storage.delete("images/d/original")
    assert not storage.exists("images/d/original")
    assert storage.list_keys("images/d/") == ["images/d/manifest.json"]


def test_delete_prefix_removes_everything_under_it_and_nothing_else(storage: Storage) -> None:
    """delete_prefix empties one image's folder (nested keys too) but not a sibling's."""
    for key in (
        "images/a/original",
        "images/a/manifest.json",
        "images/a/pyramids/g1/image.zip",
        "images/ab/original",
        "images/b/original",
    ):
        storage.put_bytes(key, b"x")
    storage.delete_prefix("images/a/")
    assert storage.list_keys("") == ["images/ab/original", "images/b/original"]
    storage.delete_prefix("images/nothing-here/")
    assert storage.list_keys("") == ["images/ab/original", "images/b/original"]


@pytest.mark.parametrize("backend", ["s3-server", "s3-mock", "s3-seaweed"])  # S3 only
def test_delete_prefix_aborts_unfinished_uploads_under_it(storage: Storage) -> None:
    """On S3, unfinished multipart uploads under the prefix go too; others are kept."""
    inside = storage.open_writer("images/a/original")
    inside.write(_pattern(PART_SIZE + 1))
    outside = storage.open_writer("images/b/original")
    outside.write(_pattern(PART_SIZE + 1))
    assert leftover_uploads(storage) == ["images/a/original", "images/b/original"]
    storage.delete_prefix("images/a/")
    assert leftover_uploads(storage) == ["images/b/original"]
    inside.abort()  # its upload is gone already (S3: 404 NoSuchUpload), which is no error
    outside.abort()
    assert leftover_uploads(storage) == []


def test_delete_prefix_ends_unfinished_writes_under_it(storage: Storage) -> None:
    """A writer left open under the prefix (its process was killed) leaves nothing behind."""
    inside = storage.open_writer("images/a/pyramids/g/image.zip")
    inside.write(_pattern(PART_SIZE + 1))
    outside = storage.open_writer("images/ab/original")
    outside.write(_pattern(PART_SIZE + 1))
    assert len(leftover_uploads(storage)) == 2
    storage.delete_prefix("images/a/")
    assert len(leftover_uploads(storage)) == 1
    outside.commit()
    assert leftover_uploads(storage) == []
    assert storage.list_keys("") == ["images/ab/original"]


def test_list_keys_is_sorted_and_limited_to_the_prefix(storage: Storage) -> None:
    """list_keys returns every key under the prefix, ascending, at any depth."""
    keys = ["images/b/original", "images/a/z", "images/a/pyramids/g/image.zip", "other/x"]
    for key in keys:
        storage.put_bytes(key, b"x")
    assert storage.list_keys("images/") == sorted(k for k in keys if k.startswith("images/"))
    assert storage.list_keys("images/a/") == ["images/a/pyramids/g/image.zip", "images/a/z"]
    assert storage.list_keys("nothing/") == []


def test_list_children_pages_with_start_after_and_limit(storage: Storage) -> None:
    """list_children names each folder once (however deep its keys), in pages, ascending."""
    names = [f"{c}{i}" for c in "kmp" for i in range(3)]  # 9 folders
    for name in names:
        storage.put_bytes(f"images/{name}/manifest.json", b"{}")
        storage.put_bytes(f"images/{name}/pyramids/g/image.zip", b"z")
    storage.put_bytes("other/zz/manifest.json", b"{}")
    pages, after = [], ""
    while True:
        page = storage.list_children("images/", after, 4)
        assert len(page) <= 4
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert pages == [names[0:4], names[4:8], names[8:9]]
    assert storage.list_children("images/", "", 100) == names
    assert storage.list_children("images/", "l", 2) == ["m0", "m1"]  # start_after need not exist
    assert storage.list_children("images/", "p2", 5) == []
    assert storage.list_children("absent/", "", 5) == []


def test_presign_get_allows_ranged_reads_without_credentials(
    storage: Storage, backend: str
) -> None:
    """Local storage offers no URL; S3 gives one that answers Range requests with 206."""
    storage.put_bytes("images/p/pyramids/g/image.zip", ALL_BYTES)
    url = storage.presign_get("images/p/pyramids/g/image.zip", 600)
    if backend == "local":
        assert url is None
        return
    assert url is not None
    assert "images/p/pyramids/g/image.zip" in url
    if backend in ("s3-server", "s3-seaweed"):  # over HTTP
        answer = httpx.get(url, headers={"Range": "bytes=10-19"})
        assert answer.status_code == 206
        assert answer.content == ALL_BYTES[10:20]
        assert answer.headers["content-range"] == f"bytes 10-19/{len(ALL_BYTES)}"


def test_conditional_create_only_when_absent(storage: Storage) -> None:
    """put_if_match(etag=None) creates the object once; a second create is a conflict."""
    tag = storage.put_if_match("images/m/manifest.json", b"one", None, "application/json")
    assert storage.get_tagged("images/m/manifest.json") == (b"one", tag)
    with pytest.raises(WriteConflict):
        storage.put_if_match("images/m/manifest.json", b"two", None)
    assert storage.get_bytes("images/m/manifest.json") == b"one"


def test_conditional_write_needs_the_tag_it_read(storage: Storage) -> None:
    """A write with the tag read succeeds and changes the tag; a stale tag is a conflict."""
    first = storage.put_if_match("images/m/manifest.json", b"one", None)
    second = storage.put_if_match("images/m/manifest.json", b"two", first)
    assert second != first
    with pytest.raises(WriteConflict):
        storage.put_if_match("images/m/manifest.json", b"lost", first)
    assert storage.get_tagged("images/m/manifest.json") == (b"two", second)
    storage.put_bytes("images/m/manifest.json", b"three")  # an unconditional writer
    with pytest.raises(WriteConflict):
        storage.put_if_match("images/m/manifest.json", b"lost", second)
    assert storage.get_bytes("images/m/manifest.json") == b"three"


def test_a_conditional_write_never_brings_back_a_deleted_object(storage: Storage) -> None:
    """After a delete, a writer holding the old tag gets a conflict and nothing reappears."""
    tag = storage.put_if_match("images/m/manifest.json", b"one", None)
    storage.delete("images/m/manifest.json")
    with pytest.raises(WriteConflict):
        storage.put_if_match("images/m/manifest.json", b"back", tag)
    assert not storage.exists("images/m/manifest.json")
    storage.put_if_match("images/n/manifest.json", b"one", None)
    storage.delete_prefix("images/n/")
    with pytest.raises(WriteConflict):
        storage.put_if_match("images/n/manifest.json", b"back", tag)
    assert storage.list_keys("") == []


def test_get_tagged_of_a_missing_object_is_not_found(storage: Storage) -> None:
    """Reading the tag of an absent object raises NotFound."""
    with pytest.raises(NotFound):
        storage.get_tagged("images/none/manifest.json")


def test_ping_answers(storage: Storage) -> None:
    """A healthy backend pings without error."""
    storage.ping()


def test_local_writes_never_leave_temp_files(local_storage: LocalStorage, tmp_path: Path) -> None:
    """Local puts and uploads go through root/.tmp and leave it empty; .tmp is never listed."""
    local_storage.put_bytes("images/t/manifest.json", b"{}")
    source = tmp_path / "f"
    source.write_bytes(os.urandom(1000))
    local_storage.upload_file("images/t/original", source)
    assert leftover_uploads(local_storage) == []
    assert local_storage.list_keys("") == ["images/t/manifest.json", "images/t/original"]


def test_local_keys_cannot_escape_the_root(local_storage: LocalStorage) -> None:
    """Keys with '..', a leading '/' or the temp folder are refused as missing."""
    for key in ("../outside", "images/../../x", "/etc/passwd", ".tmp/upload-1"):
        with pytest.raises(NotFound):
            local_storage.get_bytes(key)
        with pytest.raises(NotFound):
            local_storage.put_bytes(key, b"x")
    assert not (local_storage.root.parent / "outside").exists()
