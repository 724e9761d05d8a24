"""Storage-triggered processing through the running stack: files put into the inbox (a local
folder, a SeaweedFS bucket) become ready images, once each, with two scanning worker processes."""

import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import pytest

from tests.conftest import quadrant_bytes
from tests.integration.conftest import AWS_ENV, s3_env
from tests.servers import (
    MotoServer,
    RedisServer,
    SeaweedServer,
    Stack,
    free_port,
    require_redis,
)

pytestmark = pytest.mark.slow
SCANNING = {
    "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0.5",
    "PLEXZOOM_INBOX_SETTLE_S": "0",
    "PLEXZOOM_WORKER_PROCESSES": "2",  # two scanners at once
}


@pytest.fixture(scope="module", params=["local", "seaweedfs"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack scanning its inbox every half second, on the local folder or SeaweedFS."""
    folder = tmp_path_factory.mktemp(f"inbox-{request.param}")
    env = {"PLEXZOOM_REDIS_URL": require_redis(12), **SCANNING}
    server = SeaweedServer(folder / "seaweedfs") if request.param == "seaweedfs" else None
    if server is not None:
        env |= s3_env(server.endpoint, f"inbox-{os.getpid()}")
    running = Stack(folder / "data", env, folder / "stack.log")
    yield running
    running.stop()
    if server is not None:
        server.stop()


def drop(stack: Stack, key: str, data: bytes) -> None:
    """Put a file into the stack's inbox as a lab would: a file copy, or an S3 PUT."""
    if "PLEXZOOM_S3_BUCKET" not in stack.env:
        path = stack.data_dir / "inbox" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    s3(stack).put_object(Bucket=stack.env["PLEXZOOM_S3_BUCKET"], Key=f"inbox/{key}", Body=data)


CREDS = {
    "aws_access_key_id": AWS_ENV["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
}


def s3(stack: Stack) -> Any:
    """A client of the stack's S3 server."""
    return boto3.client(
        "s3",
        endpoint_url=stack.env["PLEXZOOM_S3_ENDPOINT_URL"],
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
    )


def inbox_keys(stack: Stack) -> list[str]:
    """What is still in the inbox."""
    if "PLEXZOOM_S3_BUCKET" not in stack.env:
        root = stack.data_dir / "inbox"
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    found = s3(stack).list_objects_v2(Bucket=stack.env["PLEXZOOM_S3_BUCKET"], Prefix="inbox/")
    return sorted(o["Key"].removeprefix("inbox/") for o in found.get("Contents", []))


def wait_images(
    stack: Stack,
    count: int,
    statuses: tuple[str, ...] = ("ready", "failed"),
    timeout_s: float = 120,
) -> list[dict[str, Any]]:
    """Wait until ``count`` images from the inbox have one of ``statuses``; return them."""
    deadline = time.monotonic() + timeout_s
    while True:
        listed = httpx.get(f"{stack.url}/v1/images", params={"limit": 200}).json()["images"]
        taken = [i for i in listed if i["source"] is not None]
        if len(taken) >= count and all(i["status"] in statuses for i in taken):
            return taken
        assert time.monotonic() < deadline, f"{len(taken)} of {count} images: {taken}"
        time.sleep(0.2)


def test_files_put_into_the_inbox_become_one_ready_image_each(stack: Stack) -> None:
    """Twelve files at once (nested, odd names) with two scanners: twelve ready images with
    their sources and names, tiles served, the inbox empty, and no name in the log."""
    token = f"pz{secrets.token_hex(6)}"
    names = [f"run {n // 4}/{token} slide+{n} µm.png" for n in range(12)]
    for n, name in enumerate(names):
        drop(stack, name, quadrant_bytes("png", 300 + n, 200))
    images = wait_images(stack, len(names))
    assert len(images) == len(names)
    assert {i["status"] for i in images} == {"ready"}
    assert sorted(i["source"]["key"].removeprefix("inbox/") for i in images) == sorted(names)
    assert sorted(i["filename"] for i in images) == sorted(n.split("/")[-1] for n in names)
    widths = {i["source"]["key"].removeprefix("inbox/"): i["width"] for i in images}
    assert widths == {name: 300 + n for n, name in enumerate(names)}
    assert httpx.get(images[0]["links"]["dzi"]).status_code == 200
    assert inbox_keys(stack) == []
    # File names stay out of logs (the check finds the name where it belongs: the status).
    assert all(token in i["filename"] for i in images)
    assert token.encode() not in stack.log_path.read_bytes()


HOOK_TOKEN = "hook-token-0123456789abcdef"


def test_an_s3_event_posted_to_the_hook_takes_the_object(tmp_path: Path) -> None:
    """Scanning off: an object put into a SeaweedFS bucket becomes a ready image once a
    MinIO-style notification names it (URL-encoded key, 's3:' name, size as a string)."""
    server = SeaweedServer(tmp_path / "seaweedfs")
    env = AWS_ENV | {
        "PLEXZOOM_REDIS_URL": require_redis(11),  # the module's stack may still run on 12
        "PLEXZOOM_S3_ENDPOINT_URL": server.endpoint,
        "PLEXZOOM_S3_BUCKET": "hooked",
        "PLEXZOOM_S3_HOOK_TOKEN": HOOK_TOKEN,
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        drop(stack, "lab 3/slide+1.png", quadrant_bytes("png", 320, 240))
        record = {
            "eventName": "s3:ObjectCreated:Put",
            "s3": {
                "bucket": {"name": "hooked"},
                "object": {"key": "inbox/lab+3/slide%2B1.png", "size": "1234"},
            },
        }
        answer = httpx.post(
            f"{stack.url}/hooks/s3?token={HOOK_TOKEN}", json={"Records": [record, record]}
        )
        assert (answer.status_code, answer.json()) == (202, {"queued": 1})
        (image,) = wait_images(stack, 1)
        assert (image["status"], image["width"]) == ("ready", 320)
        assert image["source"]["key"] == "inbox/lab 3/slide+1.png"
        assert inbox_keys(stack) == []
    finally:
        stack.stop()
        server.stop()


def test_an_object_put_into_a_bucket_that_notifies_sqs_is_taken(tmp_path: Path) -> None:
    """Scanning off, moto's server for S3 and SQS: the bucket notifies the queue, the worker's
    consumer takes the object, the image ends ready and the queue empty."""
    moto = MotoServer()
    env = AWS_ENV | {
        "PLEXZOOM_REDIS_URL": require_redis(11),
        "PLEXZOOM_S3_ENDPOINT_URL": moto.endpoint,
        "PLEXZOOM_S3_BUCKET": "notified",
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0",
        "PLEXZOOM_SQS_WAIT_S": "1",
    }
    client = boto3.client("sqs", endpoint_url=moto.endpoint, region_name="us-east-1", **CREDS)
    url = client.create_queue(QueueName="s3-events")["QueueUrl"]
    env["PLEXZOOM_SQS_QUEUE_URL"] = url
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        s3(stack).put_bucket_notification_configuration(
            Bucket="notified",
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        drop(stack, "run 1/slide.png", quadrant_bytes("png", 330, 220))
        (image,) = wait_images(stack, 1)
        assert (image["status"], image["width"]) == ("ready", 330)
        assert inbox_keys(stack) == []
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        assert [found[n] for n in names] == ["0", "0"]
    finally:
        stack.stop()
        moto.stop()


def test_a_watched_bucket_is_imported_and_left_as_it_is(tmp_path: Path) -> None:
    """PLEXZOOM_WATCH on SeaweedFS: objects of a scanner's bucket become ready images; the
    scanner's bucket keeps exactly what it had."""
    server = SeaweedServer(tmp_path / "seaweedfs")
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", **CREDS)
    client.create_bucket(Bucket="scanner")
    for n in range(3):
        client.put_object(
            Bucket="scanner", Key=f"out/s{n}.png", Body=quadrant_bytes("png", 200 + n, 90)
        )
    env = AWS_ENV | {
        "PLEXZOOM_REDIS_URL": require_redis(11),
        "PLEXZOOM_S3_ENDPOINT_URL": server.endpoint,
        "PLEXZOOM_S3_BUCKET": "plexzoom",
        "PLEXZOOM_WATCH": '["s3://scanner/out/"]',
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0.5",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        images = wait_images(stack, 3)
        assert sorted(i["width"] for i in images) == [200, 201, 202]
        assert {i["status"] for i in images} == {"ready"}
        assert {i["source"]["bucket"] for i in images} == {"scanner"}
        kept = client.list_objects_v2(Bucket="scanner")["Contents"]
        assert sorted(o["Key"] for o in kept) == ["out/s0.png", "out/s1.png", "out/s2.png"]
    finally:
        stack.stop()
        server.stop()


def test_a_worker_killed_between_claim_and_queue(tmp_path: Path) -> None:
    """SIGKILL of the worker holding a fresh claim (held before its image exists): `make run`
    starts a new worker, whose scan completes the claim after the grace period: one image,
    ready, under the claimed id."""
    env = {
        "PLEXZOOM_REDIS_URL": require_redis(11),
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0.5",
        "PLEXZOOM_INBOX_SETTLE_S": "0",
        "PLEXZOOM_QUEUED_GRACE_S": "2",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        stack.hold.arm("claimed")
        drop(stack, "killed.png", quadrant_bytes("png", 310, 200))
        worker = psutil.Process(stack.hold.wait_held("claimed"))
        claims = list((stack.data_dir / "claims" / "taken").iterdir())
        assert len(claims) == 1 and wait_images(stack, 0) == []
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        stack.hold.disarm()
        (image,) = wait_images(stack, 1)
        assert (image["status"], image["width"]) == ("ready", 310)
        assert image["id"] == json.loads(claims[0].read_text())["image_id"]
        assert inbox_keys(stack) == []
    finally:
        stack.stop()


def test_the_local_folder_is_watched(tmp_path: Path) -> None:
    """With the next interval scan an hour away, a file copied into the inbox folder becomes a
    ready image: the file-system watcher starts a scan once the file has settled."""
    env = {
        "PLEXZOOM_REDIS_URL": require_redis(11),
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "3600",
        "PLEXZOOM_INBOX_SETTLE_S": "0.5",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        stack.wait_logged("watching the inbox folder for new files")
        drop(stack, "watched/slide.png", quadrant_bytes("png", 270, 180))
        (image,) = wait_images(stack, 1)
        assert (image["status"], image["width"]) == ("ready", 270)
    finally:
        stack.stop()


def test_a_file_taken_while_redis_is_down_is_converted_once_redis_is_back(
    tmp_path: Path,
) -> None:
    """Redis dies; a file lands: it is claimed, recorded and marked queued, but its message is
    lost. Redis comes back empty: the reconciler queues it again and it ends ready, once."""
    port = free_port()
    server = RedisServer(port)
    env = {
        "PLEXZOOM_REDIS_URL": server.url,
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0.5",
        "PLEXZOOM_INBOX_SETTLE_S": "0",
        "PLEXZOOM_QUEUED_GRACE_S": "2",
        "PLEXZOOM_RECONCILE_INTERVAL_S": "1",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        stack.wait_logged("watching the inbox folder for new files")
        server.kill()
        drop(stack, "while-down.png", quadrant_bytes("png", 290, 190))
        (queued,) = wait_images(stack, 1, statuses=("queued",))
        server = RedisServer(port)
        (image,) = wait_images(stack, 1)
        assert (image["id"], image["status"], image["width"]) == (queued["id"], "ready", 290)
    finally:
        stack.stop()
        server.kill()
