"""The Dramatiq actor over a real Redis broker: deliberate limits, idempotent redelivery."""

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import pyvips
from dramatiq.brokers.redis import RedisBroker

from plexzoom.core.formats import PNG
from plexzoom.core.images import start_image, submit_image
from plexzoom.core.manifest import read_manifest
from plexzoom.core.storage import LocalStorage
from tests.servers import require_redis


@pytest.fixture(scope="module")
def worker_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisBroker, Path]]:
    """A real Redis broker (database 1) and the actors module bound to it."""
    data = tmp_path_factory.mktemp("worker-data")
    url = require_redis(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("PLEXZOOM_REDIS_URL", url)
    mp.setenv("PLEXZOOM_DATA_DIR", str(data))
    from plexzoom.core.queue import connect_broker

    broker = connect_broker(url)
    from plexzoom.worker import actors

    actors.convert.broker = broker
    broker.declare_actor(actors.convert)
    yield broker, data
    mp.undo()


def test_actor_limits_are_deliberate(worker_env: tuple[RedisBroker, Path]) -> None:
    """Dramatiq's defaults (10 min time limit, 20 retries) are not what the worker runs with."""
    from plexzoom.worker import actors

    options = actors.convert.options
    assert options["time_limit"] >= 3600 * 1000
    assert options["max_retries"] <= 5
    assert actors.convert.queue_name == "conversions"


def test_redelivered_message_gives_the_same_result(worker_env: tuple[RedisBroker, Path]) -> None:
    """The same message delivered twice converts once and leaves the same keys."""
    broker, data = worker_env
    storage = LocalStorage(data)
    buffer = (
        pyvips.Image.black(500, 300, bands=3)
        .draw_rect([200, 10, 10], 50, 50, 100, 100, fill=True)
        .write_to_buffer(".png")
    )
    manifest = start_image(storage, "a.png")
    storage.put_bytes(f"images/{manifest.id}/original", buffer)
    from plexzoom.core.queue import enqueue_conversion

    submit_image(storage, manifest, PNG, len(buffer), lambda i: enqueue_conversion(broker, i))
    enqueue_conversion(broker, manifest.id)  # a redelivery
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join("conversions", timeout=60_000)
        worker.join()
    finally:
        worker.stop()
    done = read_manifest(storage, manifest.id)
    assert done.status == "ready"
    assert done.attempts == 1
    keys = set(storage.list_keys(f"images/{manifest.id}/"))
    gen = done.generation
    assert keys == {
        f"images/{manifest.id}/manifest.json",
        f"images/{manifest.id}/original",
        f"images/{manifest.id}/pyramids/{gen}/image.zip",
        f"images/{manifest.id}/pyramids/{gen}/image.index.json",
    }
