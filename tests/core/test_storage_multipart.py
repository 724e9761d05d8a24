"""Resumable multipart uploads, one contract on every backend: a folder, SeaweedFS, moto's S3
server and moto's mock. Parts other than the last are the 5 MiB S3 requires, no bigger."""

import io
import random
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from plexzoom.core.errors import BadRequest, Conflict, NotFound
from plexzoom.core.storage import LocalStorage, Storage
from plexzoom.core.storage.parts import MIN_PART_SIZE

KEY = "images/u/original"
MOTO = ("s3-server", "s3-mock")


def _bytes(size: int, seed: int) -> bytes:
    """Random bytes, different for each seed (a part in the wrong place shows)."""
    return random.Random(seed).randbytes(size)


def _unknown_id(storage: Storage) -> str:
    """An upload id of the right shape that no upload has."""
    upload_id = storage.create_multipart("images/other/original")
    storage.abort_multipart("images/other/original", upload_id)
    return upload_id


def test_parts_join_into_the_object_in_number_order(storage: Storage) -> None:
    """Three parts put in any order, listed and completed from a shuffled list, make one object
    of their bytes in number order; the upload is gone afterwards."""
    data = {1: _bytes(MIN_PART_SIZE, 1), 2: _bytes(MIN_PART_SIZE, 2), 3: b"the last part"}
    upload_id = storage.create_multipart(KEY, "application/octet-stream")
    etags = {n: storage.put_part(KEY, upload_id, n, data[n]) for n in (3, 1, 2)}
    parts = storage.list_parts(KEY, upload_id)
    assert [(p.number, p.size, p.etag) for p in parts] == [
        (n, len(data[n]), etags[n]) for n in (1, 2, 3)
    ]
    assert all('"' not in etag for etag in etags.values())
    storage.complete_multipart(KEY, upload_id, [(2, etags[2]), (3, etags[3]), (1, etags[1])])
    assert storage.get_bytes(KEY) == data[1] + data[2] + data[3]
    assert storage.list_keys("") == [KEY]
    assert storage.list_multipart_uploads("") == []
    with pytest.raises(NotFound):
        storage.list_parts(KEY, upload_id)


def test_quoted_etags_complete_as_well(storage: Storage) -> None:
    """ETags as HTTP gives them (in quotes, from a presigned PUT's answer) are accepted."""
    upload_id = storage.create_multipart(KEY)
    etag = storage.put_part(KEY, upload_id, 1, b"only part")
    storage.complete_multipart(KEY, upload_id, [(1, f'"{etag}"')])
    assert storage.get_bytes(KEY) == b"only part"


def test_put_part_reads_a_file(storage: Storage) -> None:
    """A part can be a readable file instead of bytes."""
    upload_id = storage.create_multipart(KEY)
    etag = storage.put_part(KEY, upload_id, 1, io.BytesIO(b"from a file"))
    assert storage.list_parts(KEY, upload_id)[0].size == len(b"from a file")
    storage.complete_multipart(KEY, upload_id, [(1, etag)])
    assert storage.get_bytes(KEY) == b"from a file"


def test_a_part_put_again_replaces_the_earlier_one(storage: Storage, backend: str) -> None:
    """Resuming may send a part twice: the last one counts, listed once."""
    upload_id = storage.create_multipart(KEY)
    first = storage.put_part(KEY, upload_id, 1, b"first try")
    second = storage.put_part(KEY, upload_id, 1, b"second try!")
    if backend == "s3-seaweed":
        # SeaweedFS keeps both until completion, lists both (LastModified in whole seconds
        # cannot tell which is newer) and completes with the one whose ETag is named.
        storage.complete_multipart(KEY, upload_id, [(1, second)])
        assert storage.get_bytes(KEY) == b"second try!"
        return
    assert [(p.number, p.size, p.etag) for p in storage.list_parts(KEY, upload_id)] == [
        (1, len(b"second try!"), second)
    ]
    with pytest.raises(Conflict):
        storage.complete_multipart(KEY, upload_id, [(1, first)])
    storage.complete_multipart(KEY, upload_id, [(1, second)])
    assert storage.get_bytes(KEY) == b"second try!"


def test_an_unfinished_upload_is_listed_as_an_upload_not_an_object(
    storage: Storage, backend: str
) -> None:
    """Until completion nothing is an object; list_multipart_uploads names the upload by key,
    id and start time, filtered by prefix."""
    before = datetime.now(UTC) - timedelta(minutes=5)  # servers' clocks round to seconds
    upload_id = storage.create_multipart(KEY)
    storage.put_part(KEY, upload_id, 1, b"part")
    other_id = storage.create_multipart("images/v/original")
    assert storage.list_keys("") == []
    assert list(storage.list_objects("")) == []
    assert list(storage.list_objects("images/")) == []
    assert not storage.exists(KEY)
    uploads = storage.list_multipart_uploads("images/u/")
    [(key, found_id, initiated)] = uploads  # a plain tuple too
    assert (key, found_id) == (KEY, upload_id)
    assert initiated.tzinfo is not None
    if backend not in MOTO:  # moto answers a fixed time, 2010-11-10T20:48:33Z
        assert before <= initiated <= datetime.now(UTC) + timedelta(minutes=5)
    assert [u.upload_id for u in storage.list_multipart_uploads("")] == [upload_id, other_id]
    assert storage.list_multipart_uploads("other/") == []


def test_abort_removes_the_upload_and_is_idempotent(storage: Storage) -> None:
    """An aborted upload has no parts and is no longer listed; aborting again, or aborting an
    unknown upload, is no error."""
    upload_id = storage.create_multipart(KEY)
    storage.put_part(KEY, upload_id, 1, _bytes(1000, 1))
    kept_id = storage.create_multipart("images/v/original")
    storage.abort_multipart(KEY, upload_id)
    with pytest.raises(NotFound):
        storage.list_parts(KEY, upload_id)
    assert [u.upload_id for u in storage.list_multipart_uploads("")] == [kept_id]
    storage.abort_multipart(KEY, upload_id)
    storage.abort_multipart(KEY, _unknown_id(storage))
    assert storage.list_keys("") == []


def test_an_unknown_upload_is_not_found(storage: Storage, backend: str) -> None:
    """Every operation on an upload id nobody started (or that was aborted), or on a real id
    with another key, raises NotFound with a sentence."""
    unknown = _unknown_id(storage)
    upload_id = storage.create_multipart(KEY)
    with pytest.raises(NotFound, match="upload"):
        storage.list_parts(KEY, unknown)
    with pytest.raises(NotFound, match="upload"):
        storage.complete_multipart(KEY, unknown, [(1, "0" * 32)])
    if backend in MOTO:
        pytest.skip(
            "moto 5.2 answers UploadPart of an unknown upload with a KeyError (500, retried) "
            "and does not tie an upload id to its key"
        )
    for key, bad_id in ((KEY, unknown), ("images/elsewhere/original", upload_id)):
        with pytest.raises(NotFound, match="upload"):
            storage.put_part(key, bad_id, 1, b"x")
        with pytest.raises(NotFound, match="upload"):
            storage.list_parts(key, bad_id)
        with pytest.raises(NotFound, match="upload"):
            storage.complete_multipart(key, bad_id, [(1, "0" * 32)])
    assert storage.list_parts(KEY, upload_id) == []


@pytest.mark.parametrize("number", [0, -1, 10_001, True])
def test_a_part_number_outside_1_to_10000_is_a_bad_request(storage: Storage, number: int) -> None:
    """Part numbers are whole numbers 1..10,000 for put, presign and complete alike."""
    upload_id = storage.create_multipart(KEY)
    with pytest.raises(BadRequest):
        storage.put_part(KEY, upload_id, number, b"x")
    if not isinstance(storage, LocalStorage):
        with pytest.raises(BadRequest):
            storage.presign_part(KEY, upload_id, number, 600)
    with pytest.raises(BadRequest):
        storage.complete_multipart(KEY, upload_id, [(number, "0" * 32)])
    assert storage.list_parts(KEY, upload_id) == []


def test_a_part_list_that_names_a_part_twice_or_none_is_a_bad_request(storage: Storage) -> None:
    """Completing with an empty list, or with one number twice, is refused before any request."""
    upload_id = storage.create_multipart(KEY)
    etag = storage.put_part(KEY, upload_id, 1, b"x")
    with pytest.raises(BadRequest):
        storage.complete_multipart(KEY, upload_id, [])
    with pytest.raises(BadRequest):
        storage.complete_multipart(KEY, upload_id, [(1, etag), (1, etag)])
    assert len(storage.list_parts(KEY, upload_id)) == 1


def test_a_small_part_before_the_last_is_refused_and_the_upload_kept(storage: Storage) -> None:
    """Every part but the last needs 5 MiB (S3's rule, the local folder's too); after the refusal
    the upload is intact, and a part put again large enough completes it."""
    upload_id = storage.create_multipart(KEY)
    small = storage.put_part(KEY, upload_id, 1, _bytes(MIN_PART_SIZE - 1, 1))
    last = storage.put_part(KEY, upload_id, 2, b"last")
    with pytest.raises(BadRequest, match="5 MiB"):
        storage.complete_multipart(KEY, upload_id, [(1, small), (2, last)])
    assert not storage.exists(KEY)
    assert [p.number for p in storage.list_parts(KEY, upload_id)] == [1, 2]
    first = _bytes(MIN_PART_SIZE, 1)
    large = storage.put_part(KEY, upload_id, 1, first)
    storage.complete_multipart(KEY, upload_id, [(1, large), (2, last)])
    assert storage.get_bytes(KEY) == first + b"last"


def test_a_wrong_etag_or_a_missing_part_is_a_conflict(storage: Storage) -> None:
    """Completing with an ETag the part does not have, or a part never stored, is a Conflict;
    the upload stays and completes with the right list."""
    data = _bytes(MIN_PART_SIZE, 1)
    upload_id = storage.create_multipart(KEY)
    etag = storage.put_part(KEY, upload_id, 1, data)
    wrong = "0" * 32 if etag != "0" * 32 else "1" * 32
    for parts in ([(1, wrong)], [(1, etag), (2, etag)], [(2, etag)]):
        with pytest.raises(Conflict):
            storage.complete_multipart(KEY, upload_id, parts)
    assert not storage.exists(KEY)
    storage.complete_multipart(KEY, upload_id, [(1, etag)])
    assert storage.get_bytes(KEY) == data


def test_parts_not_named_are_discarded(storage: Storage) -> None:
    """A completion with fewer parts than stored uses only those named, and leaves no parts."""
    upload_id = storage.create_multipart(KEY)
    etag = storage.put_part(KEY, upload_id, 1, b"kept")
    storage.put_part(KEY, upload_id, 2, b"dropped")
    storage.complete_multipart(KEY, upload_id, [(1, etag)])
    assert storage.get_bytes(KEY) == b"kept"
    assert storage.list_multipart_uploads("") == []


def test_presigned_part_urls_take_a_plain_put(storage: Storage, backend: str) -> None:
    """S3 gives a URL a client PUTs a part to without credentials; the part is then listed and
    completes the upload. The local folder gives None (the api serves its part URLs)."""
    upload_id = storage.create_multipart(KEY)
    url = storage.presign_part(KEY, upload_id, 1, 600)
    if backend == "local":
        assert url is None
        return
    assert url is not None
    if backend == "s3-mock":
        pytest.skip("moto's in-process mock has no HTTP server to PUT to")
    answer = httpx.put(url, content=b"sent by a browser")
    assert answer.status_code == 200, answer.text
    etag = answer.headers["etag"]
    [part] = storage.list_parts(KEY, upload_id)
    assert (part.number, part.size, part.etag) == (1, len(b"sent by a browser"), etag.strip('"'))
    storage.complete_multipart(KEY, upload_id, [(1, etag)])
    assert storage.get_bytes(KEY) == b"sent by a browser"


def test_list_parts_reads_every_page(storage: Storage, backend: str) -> None:
    """More than 1,000 parts (one page of S3's ListParts) are all listed."""
    if backend not in MOTO:
        pytest.skip("pages are S3's; 1,001 parts to SeaweedFS take too long for a fast test")
    upload_id = storage.create_multipart(KEY)
    for number in range(1, 1002):
        storage.put_part(KEY, upload_id, number, b"p")
    assert [p.number for p in storage.list_parts(KEY, upload_id)] == list(range(1, 1002))


def test_delete_prefix_aborts_the_uploads_under_it(storage: Storage) -> None:
    """Deleting an image's prefix ends its unfinished uploads too, and no others."""
    inside = storage.create_multipart(KEY)
    storage.put_part(KEY, inside, 1, b"x")
    outside = storage.create_multipart("images/v/original")
    storage.delete_prefix("images/u/")
    assert [u.upload_id for u in storage.list_multipart_uploads("")] == [outside]
    with pytest.raises(NotFound):
        storage.list_parts(KEY, inside)


@pytest.mark.parametrize(
    "upload_id", ["../../escape", "A" * 32, "0" * 31, "0" * 33, "", "0" * 31 + "/", ".."]
)
def test_local_upload_ids_are_checked_before_a_path_is_built(
    local_storage: LocalStorage, upload_id: str
) -> None:
    """An id not of the local backend's shape is an unknown upload, whatever it contains."""
    kept = local_storage.create_multipart(KEY)
    with pytest.raises(NotFound):
        local_storage.put_part(KEY, upload_id, 1, b"x")
    with pytest.raises(NotFound):
        local_storage.list_parts(KEY, upload_id)
    local_storage.abort_multipart(KEY, upload_id)
    assert [u.upload_id for u in local_storage.list_multipart_uploads("")] == [kept]


def test_local_parts_live_in_a_hidden_folder(local_storage: LocalStorage) -> None:
    """Parts sit under root/.uploads, which no listing shows and no key can name."""
    upload_id = local_storage.create_multipart(KEY)
    local_storage.put_part(KEY, upload_id, 1, b"x")
    assert (local_storage.root / ".uploads" / upload_id).is_dir()
    assert local_storage.list_keys("") == []
    with pytest.raises(NotFound):
        local_storage.get_bytes(f".uploads/{upload_id}/upload.json")
