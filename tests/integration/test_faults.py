"""Jobs survive faults, with real processes: the stack as `make run` starts it, real signals,
a Redis server stopped and started again empty, an S3 server behind a fault-injecting proxy.

Each test ends on the image's final state: ``ready`` once (with the attempts counted and exactly
the expected storage keys), or ``failed`` with a reason, and nothing left that no manifest names.
"""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import psutil
import pytest
import redis

from plexzoom.core.keys import manifest_key
from plexzoom.core.manifest import Manifest, read_manifest
from plexzoom.core.storage import LocalStorage
from tests.core.test_jobs import interlaced_png
from tests.faults import FaultProxy
from tests.integration.conftest import AWS_ENV
from tests.integration.test_pipeline import quadrant_image, upload
from tests.servers import MotoServer, Stack, free_port, require_redis

pytestmark = pytest.mark.slow
# Short leases and reconciler passes keep each test within a minute or two.
FAST = {
    "PLEXZOOM_JOB_LEASE_S": "4",
    "PLEXZOOM_RECONCILE_INTERVAL_S": "1",
    "PLEXZOOM_QUEUED_GRACE_S": "3",
}


def noise_tiff(side: int) -> bytes:
    """A tiled JPEG TIFF of noise that takes a few seconds to convert."""
    import pyvips

    image = pyvips.Image.gaussnoise(side, side, sigma=60).cast("uchar").bandjoin([128, 64])
    return bytes(image.copy(interpretation="srgb").tiffsave_buffer(tile=True, compression="jpeg"))


def expected_keys(image_id: str, generation: str) -> set[str]:
    """What a converted RGB image keeps in storage, and nothing else."""
    base = f"images/{image_id}/"
    return {
        base + "manifest.json",
        base + "original",
        base + f"pyramids/{generation}/image.zip",
        base + f"pyramids/{generation}/image.index.json",
    }


def local_keys(data_dir: Path) -> set[str]:
    """Every object of a local-folder store, and the unfinished writes in its temp folder."""
    found = {p.relative_to(data_dir).as_posix() for p in (data_dir / "images").rglob("*")}
    return {k for k in found if (data_dir / k).is_file()} | {
        f".tmp/{p.name}" for p in (data_dir / ".tmp").iterdir()
    }


def s3_client(endpoint: str) -> Any:
    """A boto3 client straight to the S3 server, with the test credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=AWS_ENV["AWS_DEFAULT_REGION"],
    )


def stored_manifest(stack: Stack, image_id: str) -> Manifest:
    """The manifest as stored, from either backend."""
    if "PLEXZOOM_S3_BUCKET" in stack.env:
        client = s3_client(stack.env["PLEXZOOM_S3_ORIGIN"])
        raw = client.get_object(Bucket=stack.env["PLEXZOOM_S3_BUCKET"], Key=manifest_key(image_id))
        return Manifest.model_validate_json(raw["Body"].read())
    return read_manifest(LocalStorage(stack.data_dir), image_id)


def converting_children(stack: Stack) -> list[psutil.Process]:
    """The spawned processes that run conversions, found through the stack's process tree."""
    found = []
    for proc in psutil.Process(stack.proc.pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def wait_progress(stack: Stack, image_id: str, at_least: float) -> dict[str, object]:
    """Poll until the image is processing at ``at_least`` progress or more."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        body: dict[str, object] = httpx.get(f"{stack.url}/v1/images/{image_id}").json()
        if body["status"] == "processing" and float(str(body["progress"])) >= at_least:
            return body
        assert body["status"] not in ("ready", "failed"), body
        time.sleep(0.05)
    raise AssertionError(f"image {image_id} never reached progress {at_least}")


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack on a local folder, the machine's Redis (database 14), short leases."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(14), **FAST}
    running = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    yield running
    running.stop()


@pytest.fixture(params=["local", "s3"])
def any_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The stack on each backend (S3: moto's server process), short leases."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(14), **FAST}
    moto = MotoServer() if request.param == "s3" else None
    if moto is not None:
        env |= AWS_ENV | {
            "PLEXZOOM_S3_ENDPOINT_URL": moto.endpoint,
            "PLEXZOOM_S3_ORIGIN": moto.endpoint,
            "PLEXZOOM_S3_BUCKET": f"kill-{os.getpid()}",
        }
    running = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    yield running
    running.stop()
    if moto is not None:
        moto.stop()


def stored_keys(stack: Stack) -> set[str]:
    """Every object of the stack's storage, and its unfinished writes (multipart or temp)."""
    if "PLEXZOOM_S3_BUCKET" not in stack.env:
        return local_keys(stack.data_dir)
    client, bucket = s3_client(stack.env["PLEXZOOM_S3_ORIGIN"]), stack.env["PLEXZOOM_S3_BUCKET"]
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {o["Key"] for o in listed} | {f"upload:{u['Key']}" for u in uploads}


def test_sigkill_of_the_converting_process(any_stack: Stack) -> None:
    """SIGKILL of the conversion at progress >= 0.3: ready once, attempt 2, exactly its keys."""
    image_id = str(upload(any_stack, noise_tiff(9000), "noise.tif")["id"])
    wait_progress(any_stack, image_id, 0.3)
    (child,) = converting_children(any_stack)
    child.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    done = any_stack.wait_status(image_id, timeout_s=120)
    print(f"SIGKILL -> ready: {time.monotonic() - killed:.1f} s")
    assert done["status"] == "ready", done
    committed = stored_manifest(any_stack, image_id)
    assert (committed.status, committed.attempts) == ("ready", 2)
    time.sleep(3)  # a late duplicate would show now: another attempt or another generation
    assert stored_manifest(any_stack, image_id) == committed
    assert stored_keys(any_stack) == expected_keys(image_id, committed.generation)


def test_a_long_healthy_conversion_is_never_started_twice(tmp_path: Path) -> None:
    """A conversion several times longer than its 2 s lease keeps it renewed: a duplicate
    message and the reconciler's passes leave it alone; it ends ready after one attempt."""
    from plexzoom.worker.broker import connect_broker, enqueue_conversion

    env = {"PLEXZOOM_REDIS_URL": require_redis(14), **FAST, "PLEXZOOM_JOB_LEASE_S": "2"}
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        image_id = str(upload(stack, noise_tiff(12000), "noise.tif")["id"])
        wait_progress(stack, image_id, 0.0)
        started = time.monotonic()
        enqueue_conversion(connect_broker(env["PLEXZOOM_REDIS_URL"]), image_id)
        assert stack.wait_status(image_id, timeout_s=120)["status"] == "ready"
        assert time.monotonic() - started > 4, "the conversion did not outlast its lease twice"
        time.sleep(2)  # the duplicate message is handled by now
        committed = stored_manifest(stack, image_id)
        assert (committed.status, committed.attempts) == ("ready", 1)
        assert local_keys(stack.data_dir) == expected_keys(image_id, committed.generation)
    finally:
        stack.stop()


def test_sigkill_of_the_whole_worker(local_stack: Stack) -> None:
    """SIGKILL of the Dramatiq worker process mid-conversion: its child dies with it, `make run`
    starts a new worker, the reconciler finds the expired lease: ready once, attempt 2."""
    image_id = str(upload(local_stack, noise_tiff(9000), "noise.tif")["id"])
    wait_progress(local_stack, image_id, 0.3)
    (child,) = converting_children(local_stack)
    (worker,) = [psutil.Process(p) for p in _dramatiq_pids(local_stack) if child.ppid() == p]
    worker.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    child.wait(timeout=10)  # PR_SET_PDEATHSIG: no conversion outlives its worker
    done = local_stack.wait_status(image_id, timeout_s=120)
    print(f"SIGKILL of the worker -> ready: {time.monotonic() - killed:.1f} s")
    assert done["status"] == "ready", done
    committed = stored_manifest(local_stack, image_id)
    assert committed.attempts == 2
    assert local_keys(local_stack.data_dir) == expected_keys(image_id, committed.generation)


def test_delete_during_a_conversion_stays_deleted(local_stack: Stack) -> None:
    """DELETE while the job writes its pyramid: 404 for good, and nothing left in storage."""
    image_id = str(upload(local_stack, noise_tiff(6000), "noise.tif")["id"])
    wait_progress(local_stack, image_id, 0.2)
    assert httpx.delete(f"{local_stack.url}/v1/images/{image_id}").status_code == 204
    deadline = time.monotonic() + 30
    while converting_children(local_stack) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # a reconciler pass or two
    assert httpx.get(f"{local_stack.url}/v1/images/{image_id}").status_code == 404
    assert local_keys(local_stack.data_dir) == set()


def test_a_converter_over_its_memory_cap(tmp_path: Path) -> None:
    """Over PLEXZOOM_CONVERT_MEMORY_MB: failed with the reason; the worker lives on and converts
    the next image."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(15), "PLEXZOOM_CONVERT_MEMORY_MB": "350", **FAST}
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        workers = _dramatiq_pids(stack)
        big = str(upload(stack, interlaced_png(8000), "big.png")["id"])
        failed = stack.wait_status(big, timeout_s=120)
        assert failed["status"] == "failed"
        assert "more than 350 MiB" in str(failed["error"])
        assert stored_manifest(stack, big).attempts == 1
        small = str(upload(stack, quadrant_image(800, 600).write_to_buffer(".png"), "s.png")["id"])
        assert stack.wait_status(small, timeout_s=120)["status"] == "ready"
        assert _dramatiq_pids(stack) == workers, "the worker was restarted"
        generation = stored_manifest(stack, small).generation
        assert local_keys(stack.data_dir) == expected_keys(small, generation) | {
            f"images/{big}/manifest.json",
            f"images/{big}/original",
        }
    finally:
        stack.stop()


def _dramatiq_pids(stack: Stack) -> set[int]:
    pids = set()
    for proc in psutil.Process(stack.proc.pid).children(recursive=True):
        try:
            if "dramatiq" in " ".join(proc.cmdline()):
                pids.add(proc.pid)
        except psutil.Error:
            continue
    return pids


class RedisServer:
    """A private redis-server without persistence, which a test may stop and start again."""

    def __init__(self, port: int) -> None:
        self.port, self.url = port, f"redis://127.0.0.1:{port}/0"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """SIGKILL: whatever it held is gone."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def test_redis_lost_and_restarted_empty(tmp_path: Path) -> None:
    """Redis dies with jobs queued and comes back empty: the reconciler queues them again."""
    port = free_port()
    server = RedisServer(port)
    stack = Stack(tmp_path / "data", {"PLEXZOOM_REDIS_URL": server.url, **FAST}, tmp_path / "log")
    try:
        data = noise_tiff(4000)
        # The worker prefetches two messages (one thread); the rest wait in Redis only.
        ids = [str(upload(stack, data, f"n{i}.tif")["id"]) for i in range(6)]
        assert redis.Redis.from_url(server.url).llen("dramatiq:conversions") >= 2
        server.kill()
        server = RedisServer(port)
        assert redis.Redis.from_url(server.url).llen("dramatiq:conversions") == 0  # lost
        expected: set[str] = set()
        for image_id in ids:
            assert stack.wait_status(image_id, timeout_s=180)["status"] == "ready"
            expected |= expected_keys(image_id, stored_manifest(stack, image_id).generation)
        assert local_keys(stack.data_dir) == expected
    finally:
        stack.stop()
        server.kill()


def poll_through_faults(stack: Stack, image_id: str) -> dict[str, object]:
    """Poll an image whose API reads also meet the faults: slow answers and 503 are fine
    (storage is unwell), a 500 never is."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{stack.url}/v1/images/{image_id}", timeout=60)
        except httpx.TimeoutException:
            continue
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200 and answer.json()["status"] in ("ready", "failed"):
            body: dict[str, object] = answer.json()
            return body
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} did not finish in 180 s")


def test_s3_answering_503_and_dropping_connections(tmp_path: Path) -> None:
    """For ten seconds every third S3 request gets 503 SlowDown and every third is dropped:
    the conversion still ends ready once, with exactly its keys."""
    moto = MotoServer()
    proxy = FaultProxy(moto.port)
    bucket = f"faults-{os.getpid()}"
    env = (
        AWS_ENV
        | FAST
        | {
            "PLEXZOOM_REDIS_URL": require_redis(15),
            "PLEXZOOM_S3_ENDPOINT_URL": proxy.endpoint,
            "PLEXZOOM_S3_BUCKET": bucket,
            "PLEXZOOM_S3_CONNECT_TIMEOUT_S": "2",
            # Renewals wait through botocore's backoff too; a lease this long outlives the faults.
            "PLEXZOOM_JOB_LEASE_S": "30",
            "PLEXZOOM_S3_ORIGIN": moto.endpoint,  # for the test's own reads, past the proxy
        }
    )
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        image_id = str(upload(stack, noise_tiff(5000), "n.tif")["id"])
        proxy.faults(seconds=10)
        done = poll_through_faults(stack, image_id)
        assert done["status"] == "ready", done
        assert proxy.counts["503"] >= 5 and proxy.counts["drop"] >= 5, proxy.counts
        committed = stored_manifest(stack, image_id)
        assert committed.attempts == 1  # botocore's retries absorbed every fault
        client = s3_client(moto.endpoint)
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        assert {o["Key"] for o in listed} == expected_keys(image_id, committed.generation)
        assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    finally:
        stack.stop()
        proxy.stop()
        moto.stop()
