"""Watched sources: a scanner's own bucket, only read. Objects are copied, never moved; a new
version is a new image; and no request that writes ever names the watched bucket."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from plexzoom.core.inbox import Inbox, scan_inbox
from plexzoom.core.manifest import read_manifest
from plexzoom.core.storage import S3Config, S3Storage
from plexzoom.core.storage.s3 import PART_SIZE
from tests.conftest import _empty_bucket, quadrant_bytes
from tests.core.test_inbox import Queue, images
from tests.core.test_storage_contract import _pattern
from tests.faults import WRITES, FaultProxy

PNG = quadrant_bytes("png", 64, 48)


def bucket_through(proxy: FaultProxy, name: str) -> S3Storage:
    """A bucket of the server behind the proxy, created."""
    storage = S3Storage(S3Config(bucket=name, endpoint_url=proxy.endpoint, region="us-east-1"))
    storage.ensure_bucket()
    return storage


@pytest.fixture
def stores(proxy: FaultProxy) -> Iterator[tuple[S3Storage, S3Storage]]:
    """plexzoom's bucket and a scanner's bucket, both through the recording proxy."""
    suffix = uuid.uuid4().hex[:10]
    ours, theirs = bucket_through(proxy, f"ours-{suffix}"), bucket_through(proxy, f"scans-{suffix}")
    yield ours, theirs
    for store in (ours, theirs):
        _empty_bucket(store)


def watch_of(theirs: S3Storage, **options: object) -> Inbox:
    """A watch on the scanner bucket's out/ prefix."""
    return Inbox(prefix="out/", bucket=theirs.bucket, moves=False, **options)  # type: ignore[arg-type]


def test_watched_objects_are_copied_once_and_never_written(
    proxy: FaultProxy, stores: tuple[S3Storage, S3Storage]
) -> None:
    """Each object (one past the multipart-copy threshold) becomes an image whose original is a
    copy; the source stays; scans after it take nothing; a new version is a new image; and no
    PUT, POST or DELETE the proxy saw names the watched bucket."""
    ours, theirs = stores
    big = _pattern(PART_SIZE + 1024)
    theirs.put_bytes("out/slide 1.png", PNG)
    theirs.put_bytes("out/run/big.tif", big)
    proxy.requests.clear()  # from here on only plexzoom's requests
    queue = Queue()
    taken = scan_inbox(ours, watch_of(theirs), queue, theirs).taken
    assert len(taken) == 2 and sorted(taken) == images(ours)
    originals = {read_manifest(ours, i).source.key: i for i in taken}  # type: ignore[union-attr]
    assert ours.get_bytes(f"images/{originals['out/slide 1.png']}/original") == PNG
    assert queue.ids == [originals["out/slide 1.png"]]  # the other holds no image: failed
    assert ours.get_bytes(f"images/{originals['out/run/big.tif']}/original") == big
    assert sorted(o.key for o in theirs.list_objects("")) == ["out/run/big.tif", "out/slide 1.png"]
    assert scan_inbox(ours, watch_of(theirs), queue, theirs).taken == []
    theirs.put_bytes("out/slide 1.png", quadrant_bytes("png", 80, 60))  # a new version
    proxy.requests.clear()
    (newer,) = scan_inbox(ours, watch_of(theirs), queue, theirs).taken
    assert read_manifest(ours, newer).source.bucket == theirs.bucket  # type: ignore[union-attr]
    writes = [line for line in proxy.requests if line.startswith(WRITES)]
    assert writes and not [line for line in writes if f"/{theirs.bucket}" in line], writes
    proxy.requests.clear()
    theirs.put_bytes("out/control.png", PNG)  # the check sees a write that names it
    assert any(f"/{theirs.bucket}/" in line for line in proxy.requests if line.startswith("PUT"))


def test_objects_older_than_the_watch_can_be_passed_over(
    stores: tuple[S3Storage, S3Storage],
) -> None:
    """PLEXZOOM_WATCH_SINCE: what was there before is not imported; what comes after is."""
    ours, theirs = stores
    theirs.put_bytes("out/old.png", PNG)
    since = datetime.now(UTC) + timedelta(hours=1)  # everything so far is "before"
    assert scan_inbox(ours, watch_of(theirs, since=since), Queue(), theirs).taken == []
    assert len(scan_inbox(ours, watch_of(theirs), Queue(), theirs).taken) == 1
