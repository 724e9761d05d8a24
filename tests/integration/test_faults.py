"""Jobs survive faults, with real processes: the stack as `make run` starts it, real signals,
a Redis server stopped and started again empty, an S3 server behind a fault-injecting proxy.

Each test ends on the image's final state: ``ready`` once (with the attempts counted and exactly
the expected storage keys), or ``failed`` with a reason, and nothing left that no manifest names.
A conversion that must be in flight is held at a progress value until the test lets it go
(tests/holds.py), and "nothing more happens" is checked once the queue has no message pending or
in flight: no test depends on how fast the machine converts.
"""

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
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
from tests.faults import WRITES, FaultProxy
from tests.integration.conftest import AWS_ENV, s3_env
from tests.integration.test_pipeline import quadrant_image, upload, wait_progress
from tests.servers import (
    MotoServer,
    RedisServer,
    SeaweedServer,
    Stack,
    free_port,
    require_redis,
)

pytestmark = pytest.mark.slow
# Short leases and reconciler passes keep each test within a minute or two.
FAST = {
    "PLEXZOOM_JOB_LEASE_S": "4",
    "PLEXZOOM_RECONCILE_INTERVAL_S": "1",
    "PLEXZOOM_QUEUED_GRACE_S": "3",
}


def noise_tiff(side: int) -> bytes:
    """A tiled JPEG TIFF of noise (every tile differs)."""
    import pyvips

    image = pyvips.Image.gaussnoise(side, side, sigma=60).cast("uchar").bandjoin([128, 64])
    return bytes(image.copy(interpretation="srgb").tiffsave_buffer(tile=True, compression="jpeg"))


def wait_drained(redis_url: str, timeout_s: float = 60) -> None:
    """Wait until no conversion message is queued, delayed (a retry) or in a worker's hands.

    Dramatiq's Redis broker keeps each message in ``{queue}.msgs`` until it is acknowledged,
    and a retry is enqueued (in ``{queue}.DQ.msgs``) before the failed delivery is acknowledged.
    """
    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout_s
    while client.hlen("dramatiq:conversions.msgs") + client.hlen("dramatiq:conversions.DQ.msgs"):
        assert time.monotonic() < deadline, f"messages still pending after {timeout_s} s"
        time.sleep(0.05)


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


@pytest.fixture
def local_stack(tmp_path: Path) -> Iterator[Stack]:
    """The stack on a local folder, the machine's Redis (database 14), short leases."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(14), **FAST}
    running = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    yield running
    running.stop()


@pytest.fixture(params=["local", "s3", "seaweedfs"])
def any_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """The stack on each backend (S3: moto's server process, SeaweedFS), short leases."""
    env = {"PLEXZOOM_REDIS_URL": require_redis(14), **FAST}
    server: MotoServer | SeaweedServer | None = None
    if request.param == "s3":
        server = MotoServer()
    elif request.param == "seaweedfs":
        server = SeaweedServer(tmp_path / "seaweedfs")
    if server is not None:
        env |= s3_env(server.endpoint, f"kill-{os.getpid()}")
        env["PLEXZOOM_S3_ORIGIN"] = server.endpoint
    running = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    yield running
    running.stop()
    if server is not None:
        server.stop()


def stored_keys(stack: Stack) -> set[str]:
    """Every object of the stack's storage, and its unfinished writes (multipart or temp)."""
    if "PLEXZOOM_S3_BUCKET" not in stack.env:
        return local_keys(stack.data_dir)
    client, bucket = s3_client(stack.env["PLEXZOOM_S3_ORIGIN"]), stack.env["PLEXZOOM_S3_BUCKET"]
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return {o["Key"] for o in listed} | {f"upload:{u['Key']}" for u in uploads}


def test_sigkill_of_the_converting_process(any_stack: Stack) -> None:
    """SIGKILL of the conversion held at progress 0.3: ready once, attempt 2, exactly its keys."""
    any_stack.hold.arm(0.3)
    image_id = str(upload(any_stack, noise_tiff(3000), "noise.tif")["id"])
    child = psutil.Process(any_stack.hold.wait_held(0.3))
    assert child in converting_children(any_stack)
    wait_progress(any_stack, image_id, 0.3)
    child.send_signal(signal.SIGKILL)
    any_stack.hold.release(0.3)
    done = any_stack.wait_status(image_id, timeout_s=120)
    assert done["status"] == "ready", done
    committed = stored_manifest(any_stack, image_id)
    assert (committed.status, committed.attempts) == ("ready", 2)
    wait_drained(any_stack.env["PLEXZOOM_REDIS_URL"])  # a late duplicate has run by now
    assert stored_manifest(any_stack, image_id) == committed
    assert stored_keys(any_stack) == expected_keys(image_id, committed.generation)


def test_a_long_healthy_conversion_is_never_started_twice(tmp_path: Path) -> None:
    """A conversion held for more than two of its 2 s leases keeps the lease renewed: a duplicate
    message (taken by a second worker thread meanwhile) and the reconciler's passes leave it
    alone; it ends ready after one attempt."""
    from plexzoom.core.queue import connect_broker, enqueue_conversion

    lease_s = 2.0
    env = {
        "PLEXZOOM_REDIS_URL": require_redis(14),
        **FAST,
        "PLEXZOOM_JOB_LEASE_S": f"{lease_s:g}",
        "PLEXZOOM_WORKER_THREADS": "2",
    }
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        stack.hold.arm(0.3)
        image_id = str(upload(stack, noise_tiff(1000), "noise.tif")["id"])
        stack.hold.wait_held(0.3)
        first_lease = stored_manifest(stack, image_id).lease_until
        assert first_lease is not None
        enqueue_conversion(connect_broker(env["PLEXZOOM_REDIS_URL"]), image_id)
        stack.wait_logged(f"image {image_id} is processing; nothing to do")
        wait_renewed(stack, image_id, first_lease + timedelta(seconds=2 * lease_s))
        stack.hold.release(0.3)
        assert stack.wait_status(image_id, timeout_s=120)["status"] == "ready"
        wait_drained(env["PLEXZOOM_REDIS_URL"])
        committed = stored_manifest(stack, image_id)
        assert (committed.status, committed.attempts) == ("ready", 1)
        assert local_keys(stack.data_dir) == expected_keys(image_id, committed.generation)
    finally:
        stack.stop()


def wait_renewed(stack: Stack, image_id: str, until: datetime, timeout_s: float = 60) -> None:
    """Wait until the stored lease of a processing image runs to ``until`` or later."""
    deadline = time.monotonic() + timeout_s
    while True:
        manifest = stored_manifest(stack, image_id)
        assert manifest.status == "processing", manifest.status
        assert manifest.lease_until is not None
        if manifest.lease_until >= until:
            return
        assert time.monotonic() < deadline, f"the lease was not renewed to {until}"
        time.sleep(0.1)


def test_sigkill_of_the_whole_worker(local_stack: Stack) -> None:
    """SIGKILL of the Dramatiq worker process mid-conversion: its child dies with it, `make run`
    starts a new worker, the reconciler finds the expired lease: ready once, attempt 2."""
    local_stack.hold.arm(0.3)
    image_id = str(upload(local_stack, noise_tiff(3000), "noise.tif")["id"])
    child = psutil.Process(local_stack.hold.wait_held(0.3))
    (worker,) = [psutil.Process(p) for p in _dramatiq_pids(local_stack) if child.ppid() == p]
    worker.send_signal(signal.SIGKILL)
    child.wait(timeout=10)  # PR_SET_PDEATHSIG: no conversion outlives its worker
    local_stack.hold.release(0.3)
    done = local_stack.wait_status(image_id, timeout_s=120)
    assert done["status"] == "ready", done
    committed = stored_manifest(local_stack, image_id)
    assert committed.attempts == 2
    assert local_keys(local_stack.data_dir) == expected_keys(image_id, committed.generation)


def test_delete_during_a_conversion_stays_deleted(local_stack: Stack) -> None:
    """DELETE while the job writes its pyramid: 404 for good, and nothing left in storage."""
    local_stack.hold.arm(0.3)
    image_id = str(upload(local_stack, noise_tiff(3000), "noise.tif")["id"])
    child = psutil.Process(local_stack.hold.wait_held(0.3))
    assert httpx.delete(f"{local_stack.url}/v1/images/{image_id}").status_code == 204
    local_stack.hold.release(0.3)
    child.wait(timeout=60)
    wait_drained(local_stack.env["PLEXZOOM_REDIS_URL"])  # the job has cleaned up after itself
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


def test_redis_lost_and_restarted_empty(tmp_path: Path) -> None:
    """Redis dies with jobs queued and comes back empty: the reconciler queues them again."""
    port = free_port()
    server = RedisServer(port)
    stack = Stack(tmp_path / "data", {"PLEXZOOM_REDIS_URL": server.url, **FAST}, tmp_path / "log")
    try:
        stack.hold.arm(0.3)
        data = noise_tiff(1000)
        ids = [str(upload(stack, data, f"n{i}.tif")["id"]) for i in range(6)]
        stack.hold.wait_held(0.3)
        # One conversion is held; the worker prefetches two messages (one thread), so at least
        # three wait in Redis only.
        assert redis.Redis.from_url(server.url).llen("dramatiq:conversions") >= 3
        server.kill()
        server = RedisServer(port)
        assert redis.Redis.from_url(server.url).llen("dramatiq:conversions") == 0  # lost
        stack.hold.release(0.3)
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
    """While the conversion goes on, S3 answers every third request for the image 503 SlowDown
    and drops every third connection (reads and writes each in turn): it still ends ready once,
    with exactly its keys, and the API answers 200 or 503 throughout, never a 500."""
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
            # The worker's reconciler reads this image's manifest with the job's User-Agent, so
            # at FAST's 1 s it took "pass" turns of the fault cycle the job's retries wait for
            # (a commit's read once met 8 faults in a row). This test needs no reconciler.
            "PLEXZOOM_RECONCILE_INTERVAL_S": "600",
            "PLEXZOOM_S3_ORIGIN": moto.endpoint,  # for the test's own reads, past the proxy
        }
    )
    stack = Stack(tmp_path / "data", env, tmp_path / "stack.log")
    try:
        stack.hold.arm(0.3)
        image_id = str(upload(stack, noise_tiff(3000), "n.tif")["id"])
        stack.hold.wait_held(0.3)
        proxy.start_faults(matching=f"/{image_id}/")  # the image's requests, reads and writes
        stack.hold.release(0.3)
        done = poll_through_faults(stack, image_id)
        proxy.stop_faults()
        assert done["status"] == "ready", done
        # Writes have a fault cycle of their own, so the job's first write after the release
        # met a 503 and the retry of that write a dropped connection.
        writes = [(f, line) for f, line in proxy.faulted if line.startswith(WRITES)]
        assert {fault for fault, _ in writes} == {"503", "drop"}, writes
        assert proxy.counts["503"] >= 1 and proxy.counts["drop"] >= 1, proxy.counts
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
