"""S3 through a proxy that answers 503 SlowDown and drops connections: botocore's retries
(standard mode, PLEXZOOM_S3_MAX_ATTEMPTS) carry every operation through."""

import uuid
from pathlib import Path

import pytest

from plexzoom.core.errors import StorageError
from plexzoom.core.storage import S3Config, S3Storage
from plexzoom.core.storage.s3 import PART_SIZE
from tests.faults import FaultProxy


def _storage(proxy: FaultProxy, max_attempts: int, agent: str = "plexzoom") -> S3Storage:
    config = S3Config(
        agent=agent,
        bucket=f"faults-{uuid.uuid4().hex[:12]}",
        endpoint_url=proxy.endpoint,
        region="us-east-1",
        max_attempts=max_attempts,
        connect_timeout_s=2,
        read_timeout_s=5,
    )
    storage = S3Storage(config)
    storage.ensure_bucket()
    return storage


def test_transient_faults_are_retried(proxy: FaultProxy) -> None:
    """Puts, conditional puts, a multipart upload and reads all succeed through the faults."""
    storage = _storage(proxy, max_attempts=8)
    proxy.start_faults()
    data = bytes(range(256)) * (PART_SIZE // 256 + 10)
    storage.put_bytes("images/a/original", b"small")
    tag = storage.put_if_match("images/a/manifest.json", b"{}", None)
    storage.put_if_match("images/a/manifest.json", b'{"a": 1}', tag)
    writer = storage.open_writer("images/a/pyramids/g/image.zip")
    writer.write(data)
    writer.commit()
    assert storage.get_bytes("images/a/original") == b"small"
    assert storage.get_bytes("images/a/manifest.json") == b'{"a": 1}'
    assert (
        storage.get_range("images/a/pyramids/g/image.zip", PART_SIZE - 5, 10)
        == (data[PART_SIZE - 5 : PART_SIZE + 5])
    )
    proxy.stop_faults()
    assert proxy.counts["503"] >= 3 and proxy.counts["drop"] >= 3, proxy.counts


def test_without_retries_the_faults_show(proxy: FaultProxy) -> None:
    """The control: with one attempt per request the same faults surface as StorageError."""
    storage = _storage(proxy, max_attempts=1)
    proxy.start_faults()
    with pytest.raises(StorageError):
        for _ in range(3):
            storage.put_bytes("images/a/original", b"x")


def test_a_file_upload_is_retried_part_by_part(proxy: FaultProxy, tmp_path: Path) -> None:
    """upload_file (how pyramids are stored: multipart, parts in parallel) gets through."""
    storage = _storage(proxy, max_attempts=8)
    data = bytes(range(256)) * (PART_SIZE // 128 + 10)  # over two parts
    path = tmp_path / "image.zip"
    path.write_bytes(data)
    proxy.start_faults()
    storage.upload_file("images/a/pyramids/g/image.zip", path)
    proxy.stop_faults()
    assert storage.get_bytes("images/a/pyramids/g/image.zip") == data
    assert proxy.counts["503"] >= 1 and proxy.counts["drop"] >= 1, proxy.counts


def test_every_request_names_its_service(proxy: FaultProxy) -> None:
    """The User-Agent names the service (S3 server logs tell api and worker apart); the
    control, a storage built without a service name, names none."""
    named = _storage(proxy, max_attempts=1, agent="plexzoom-worker")
    named.put_bytes("images/a/original", b"x")
    assert named.get_bytes("images/a/original") == b"x"
    assert proxy.agents and set(proxy.agents) == {"plexzoom-worker"}
    before = len(proxy.agents)
    _storage(proxy, max_attempts=1).put_bytes("images/a/original", b"y")
    assert set(proxy.agents[before:]) == {""}
