"""Image events: record writes become events in a capped Redis stream (a real Redis)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from plexzoom.core import keys
from plexzoom.core.eventlog import EventingStorage, EventLog, parse_id
from plexzoom.core.images import delete_image, discard_image, start_image
from plexzoom.core.manifest import update_manifest
from plexzoom.core.storage import LocalStorage
from tests.servers import require_redis

_DB = 6  # this module's Redis database; each test has a stream of its own


@pytest.fixture(scope="module")
def client() -> "redis.Redis[bytes]":
    return redis.Redis.from_url(require_redis(_DB))


@pytest.fixture
def events(client: "redis.Redis[bytes]") -> Iterator[EventLog]:
    log = EventLog(client, stream=f"test:events:{uuid.uuid4().hex}", history=100)
    yield log
    client.delete(log.stream)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_records_life_in_order(events: EventLog, tmp_path: Path) -> None:
    """Created, each status change, progress at most four times a second, deleted."""
    clock = Clock()
    storage = EventingStorage(LocalStorage(tmp_path), events, clock)
    manifest = start_image(storage, "a.tif")

    def set_state(status: str, stage: str, progress: float) -> None:
        def change(m):  # type: ignore[no-untyped-def]
            m.status, m.stage, m.progress = status, stage, progress
            return m

        update_manifest(storage, manifest.id, change)

    set_state("queued", "queued", 0.0)
    set_state("processing", "building", 0.0)
    for step in range(1, 40):  # 39 progress writes within 0.1 s of the last event: none told
        clock.now += 0.1 / 39
        set_state("processing", "building", step / 40)
    clock.now += 0.3
    set_state("processing", "building", 0.99)  # a quarter second later: told
    set_state("ready", "done", 1.0)
    delete_image(storage, manifest.id)
    got = events.after("0-0")
    kinds = [(e.kind, e.data.get("status"), e.data.get("progress")) for e in got]
    assert kinds[0] == ("created", "uploading", 0.0)
    assert kinds[1:3] == [("image", "queued", 0.0), ("image", "processing", 0.0)]
    progress = [k for k in kinds if k[1] == "processing"][1:]
    assert [p[2] for p in progress] == [0.99], "progress-only writes were not coalesced"
    assert kinds[-2:] == [("image", "ready", 1.0), ("deleted", None, None)]
    assert all(e.data["id"] == manifest.id for e in got)
    ids = [e.id for e in got]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert events.after(ids[2])[0].id == ids[3]  # resume after any event


def test_an_abandoned_upload_is_deleted_once_and_other_keys_are_silent(
    events: EventLog, tmp_path: Path
) -> None:
    storage = EventingStorage(LocalStorage(tmp_path), events)
    manifest = start_image(storage, "b.png")
    storage.put_bytes(keys.original_key(manifest.id), b"pixels")
    discard_image(storage, manifest.id)
    discard_image(storage, manifest.id)  # nothing left: no second event
    assert [e.kind for e in events.after("0-0")] == ["created", "deleted"]


def test_history_is_capped_and_a_trimmed_resume_is_detected(events: EventLog) -> None:
    first = events.publish("image", {"id": "x", "n": 0})
    assert not events.trimmed_after(first)
    for n in range(1, 1000):
        events.publish("image", {"id": "x", "n": n})
    assert events.client.xlen(events.stream) < 400  # MAXLEN ~ 100 trims whole nodes
    assert events.trimmed_after(first)
    assert not events.trimmed_after(events.latest_id())
    assert not events.trimmed_after("0-0")  # "from the oldest kept" is never too old


def test_a_redis_that_is_down_never_fails_a_write(tmp_path: Path) -> None:
    """Events are news, the record is the truth: a write succeeds with no Redis to tell."""
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    storage = EventingStorage(LocalStorage(tmp_path), EventLog(dead))
    manifest = start_image(storage, "c.png")
    assert (tmp_path / keys.manifest_key(manifest.id)).exists()


def test_event_ids_from_clients_are_checked() -> None:
    assert parse_id("1733300000000-0") == "1733300000000-0"
    for bad in ("", "0", "1-2-3", "abc-1", "1733300000000-0\nevent: x", "-1-0"):
        assert parse_id(bad) is None, bad
