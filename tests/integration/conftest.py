"""Whole-stack fixtures: plexzoom.run over a real Redis, with local-folder or S3 storage.

S3 is moto's server ("s3") or SeaweedFS ("seaweedfs", a real S3 server that checks signatures).
"""

import itertools
import os
from collections.abc import Iterator

import boto3
import pytest

from tests.servers import MotoServer, SeaweedServer, Stack, require_redis

_DBS = itertools.count(2)  # Redis databases 2.. for stacks; one per stack so queues never mix
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """Environment of a stack that stores everything in ``bucket`` at ``endpoint``."""
    return AWS_ENV | {"PLEXZOOM_S3_ENDPOINT_URL": endpoint, "PLEXZOOM_S3_BUCKET": bucket}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """moto's S3 server in its own process."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """SeaweedFS (`weed mini`) in its own process, its data in a temp folder."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["local", "s3", "seaweedfs"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The whole stack, once per storage backend, with the machine's Redis as broker."""
    folder = tmp_path_factory.mktemp(f"stack-{request.param}")
    env = {"PLEXZOOM_REDIS_URL": require_redis(next(_DBS) % 16)}
    if request.param in ("s3", "seaweedfs"):
        server: MotoServer | SeaweedServer = request.getfixturevalue(
            "moto" if request.param == "s3" else "seaweed"
        )
        env |= s3_env(server.endpoint, f"plexzoom-{os.getpid()}")
    running = Stack(folder / "data", env, folder / "stack.log")
    yield running
    running.stop()


def stored_keys(stack: Stack, prefix: str) -> set[str]:
    """Every storage key under ``prefix``, whichever backend the stack uses."""
    env = stack.env
    if "PLEXZOOM_S3_BUCKET" in env:
        client = boto3.client("s3", endpoint_url=env["PLEXZOOM_S3_ENDPOINT_URL"], **_creds())
        found = client.list_objects_v2(Bucket=env["PLEXZOOM_S3_BUCKET"], Prefix=prefix)
        return {o["Key"] for o in found.get("Contents", [])}
    root = stack.data_dir / prefix
    return {p.relative_to(stack.data_dir).as_posix() for p in root.rglob("*") if p.is_file()}


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": "us-east-1",
    }
