"""The worker's /metrics: `python -m plexzoom.worker` with two processes over a real Redis
(database 4), scraped on PLEXZOOM_METRICS_PORT while it converts."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from plexzoom.core.formats import PNG
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.manifest import read_manifest
from plexzoom.core.queue import QUEUE, enqueue_conversion
from plexzoom.core.storage import LocalStorage
from tests.conftest import quadrant_bytes
from tests.servers import free_port, require_redis, start_module, wait_http

pytestmark = pytest.mark.slow
CONVERSIONS = 3
TIMEOUT_S = 180  # a bound for slow machines; every wait ends as soon as its condition holds


@dataclass
class Worker:
    """A running worker: its process, metrics URL, storage and a broker to send it messages."""

    proc: subprocess.Popen[bytes]
    metrics_url: str
    storage: LocalStorage
    broker: RedisBroker
    redis: "redis.Redis[bytes]"
    log: Path


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    """`python -m plexzoom.worker`, 2 processes, metrics on a free port; killed with its
    process group (conversion children included) and its Redis database emptied at the end."""
    url = require_redis(4)
    client = redis.Redis.from_url(url)
    port = free_port()
    env = {
        "PLEXZOOM_REDIS_URL": url,
        "PLEXZOOM_DATA_DIR": str(tmp_path / "data"),
        "PLEXZOOM_PROCESSES": "2",
        "PLEXZOOM_METRICS_PORT": str(port),
        "PLEXZOOM_INBOX_SCAN_INTERVAL_S": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PLEXZOOM_LOG_FORMAT": "json",
    }
    proc = start_module("plexzoom.worker", env, tmp_path / "worker.log")
    broker = RedisBroker(client=client)  # type: ignore[no-untyped-call]
    try:
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        wait_http(metrics_url, proc, timeout_s=TIMEOUT_S)
        storage = LocalStorage(tmp_path / "data")
        yield Worker(proc, metrics_url, storage, broker, client, tmp_path / "worker.log")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        client.flushdb()
        broker.close()


def scrape(url: str) -> list[Sample]:
    """Every sample of one /metrics answer."""
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200
    return [s for family in text_string_to_metric_families(answer.text) for s in family.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds (at most TIMEOUT_S)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen in {TIMEOUT_S} s"
        time.sleep(0.1)


def submit(worker: Worker, width: int) -> str:
    """Upload a generated PNG as the API would and queue its conversion."""
    data = quadrant_bytes("png", width, 200)
    manifest = start_image(worker.storage, f"{width}.png")
    worker.storage.put_bytes(f"images/{manifest.id}/original", data)
    submit_image(
        worker.storage, manifest, PNG, len(data), lambda i: enqueue_conversion(worker.broker, i)
    )
    return manifest.id


def test_the_worker_serves_conversion_and_dramatiq_metrics(worker: Worker) -> None:
    """k conversions over two processes: ready counted k times in all, Dramatiq's message
    counts beside them, stage times in buckets up to 8 hours; anything but /metrics is 404."""
    image_ids = [submit(worker, 300 + 10 * n) for n in range(CONVERSIONS)]

    def all_ready() -> bool:
        statuses = {read_manifest(worker.storage, i).status for i in image_ids}
        assert "failed" not in statuses
        return statuses == {"ready"}

    wait_for(all_ready, "the conversions")
    # The counters move just after each commit: wait for the last of them.
    wait_for(
        lambda: (
            total(scrape(worker.metrics_url), "dramatiq_messages_total", actor_name="convert")
            >= CONVERSIONS
        ),
        "Dramatiq's count of the messages",
    )
    samples = scrape(worker.metrics_url)
    assert total(samples, "plexzoom_conversions_total", outcome="ready") == CONVERSIONS
    assert total(samples, "plexzoom_conversions_total", outcome="failed") == 0
    assert total(samples, "plexzoom_conversion_seconds_count", outcome="ready") == CONVERSIONS
    for le in ("28800.0", "+Inf"):
        bucket = "plexzoom_conversion_stage_seconds_bucket"
        assert total(samples, bucket, stage="reading", le=le) == CONVERSIONS
        assert total(samples, bucket, stage="committing", le=le) == CONVERSIONS
    assert total(samples, "plexzoom_lease_renewals_total", result="ok") >= CONVERSIONS
    assert total(samples, "dramatiq_message_duration_milliseconds_count") >= CONVERSIONS
    assert httpx.get(worker.metrics_url.replace("/metrics", "/other")).status_code == 404
    # PLEXZOOM_LOG_FORMAT=json: every line the worker wrote (Dramatiq's and plexzoom's, from
    # every process) is one JSON object.
    lines = [json.loads(line) for line in worker.log.read_text().splitlines() if line.strip()]
    said = [line["message"] for line in lines]
    assert all(f"image {i}: ready" in said for i in image_ids)
    assert any(line["logger"].startswith("dramatiq") for line in lines)


def test_the_queue_gauge_is_the_length_of_the_queue(worker: Worker) -> None:
    """With the worker processes stopped (SIGSTOP) only the metrics process answers: messages
    sent then wait in Redis, and the gauge shows as many as the list holds."""
    port = int(worker.metrics_url.split(":")[2].split("/")[0])
    stopped = [p for p in psutil.Process(worker.proc.pid).children() if not _listens(p, port)]
    assert len(stopped) == 2  # the two worker processes; the third child serves /metrics
    for process in stopped:
        process.send_signal(signal.SIGSTOP)
    for n in range(4):
        enqueue_conversion(worker.broker, f"no-such-image-{n}")
    # A consumer caught between its fetch and the stop may still take one or two (seen once in
    # a full run): compare the gauge with the list's length read just after the scrape.
    waiting = total(scrape(worker.metrics_url), "plexzoom_queue_messages", state="waiting")
    assert waiting == worker.redis.llen(f"dramatiq:{QUEUE}") >= 1


def _listens(process: psutil.Process, port: int) -> bool:
    """True when ``process`` listens on ``port``."""
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port
        for c in process.net_connections(kind="tcp")
    )
