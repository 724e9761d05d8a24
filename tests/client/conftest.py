"""The whole stack (web + worker, `python -m plexzoom.run`) for the client's tests, once per
storage backend: a local folder, and S3 on SeaweedFS. Each stack has a private Redis server of
its own, so its queue and events never mix with another test's; parts are 5 MiB (the
smallest S3 takes), so an 11 MiB file is three parts."""

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.servers import RedisServer, SeaweedServer, Stack

KEY = "client-tests-key-5d0c2b"
PART_BYTES = 5 * 1024 * 1024
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": SeaweedServer.ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SeaweedServer.SECRET_KEY,
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module", params=["local", "seaweedfs"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack with API keys, on one storage backend."""
    folder = tmp_path_factory.mktemp(f"client-{request.param}")
    redis = RedisServer()
    seaweed = SeaweedServer(folder / "seaweedfs") if request.param == "seaweedfs" else None
    env = {
        "PLEXZOOM_REDIS_URL": redis.url,
        "PLEXZOOM_API_KEYS": KEY,
        "PLEXZOOM_UPLOAD_PART_BYTES": str(PART_BYTES),
    }
    if seaweed is not None:
        env |= AWS_ENV | {"PLEXZOOM_S3_ENDPOINT_URL": seaweed.endpoint,
                          "PLEXZOOM_S3_BUCKET": "plexzoom-client"}  # fmt: skip
    try:
        running = Stack(folder / "data", env, folder / "stack.log")
    except BaseException:
        redis.kill()
        if seaweed is not None:
            seaweed.stop()
        raise
    yield running
    running.stop()
    redis.kill()
    if seaweed is not None:
        seaweed.stop()


def write_tiff(path: Path, width: int, height: int, seed: int = 0) -> Path:
    """An uncompressed RGB TIFF of random pixels (width x height x 3 bytes, plus a header)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    tifffile.imwrite(path, pixels)
    return path


@pytest.fixture(scope="module")
def three_parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TIFF of about 10.7 MiB: parts of 5, 5 and 0.7 MiB."""
    path = write_tiff(tmp_path_factory.mktemp("images") / "noise.tif", 1700, 2200)
    assert 2 * PART_BYTES < path.stat().st_size < 3 * PART_BYTES
    return path


MiB = 1024 * 1024


@pytest.fixture
def slides(tmp_path: Path) -> list[Path]:
    """Two 11 MiB files of varied bytes: parts 5, 5 and 1 MiB each."""
    paths = [tmp_path / "a.tif", tmp_path / "b.tif"]
    for path in paths:
        path.write_bytes(os.urandom(11 * MiB))
    return paths
