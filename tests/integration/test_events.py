"""GET /v1/events over HTTP: two api processes stream the same events of a conversion, in order;
Last-Event-ID resumes; a trimmed history says reset; keys are required when set."""

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from plexzoom.core.eventlog import STREAM, EventLog
from tests.integration.test_pipeline import quadrant_image
from tests.servers import Stack, require_redis

pytestmark = pytest.mark.slow
_DB = 6  # this module's Redis database: both stacks share it, as api hosts share one Redis
HISTORY = 200
ORDER = ["uploading", "queued", "processing", "ready"]


@dataclass
class Received:
    """One SSE message."""

    kind: str
    data: dict[str, Any]
    id: str | None = None


@dataclass
class Reader:
    """Reads an event stream in a thread until ``stop_when`` holds for a message (or 60 s)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    stop_when: Any = None
    messages: list[Received] = field(default_factory=list)
    status: int | None = None
    opened: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "Reader":
        threading.Thread(target=self._run, daemon=True).start()
        assert self.opened.wait(30), "the stream did not open"
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        try:
            with httpx.stream("GET", self.url, headers=self.headers, timeout=30) as answer:
                self.status = answer.status_code
                self.opened.set()
                if answer.status_code != 200:
                    return
                kind, data, event_id = "message", [], None
                for line in answer.iter_lines():
                    if time.monotonic() > deadline:
                        return
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                    elif line.startswith("id: "):
                        event_id = line[4:]
                    elif line == "" and data:
                        message = Received(kind, json.loads("\n".join(data)), event_id)
                        self.messages.append(message)
                        kind, data, event_id = "message", [], None
                        if self.stop_when and self.stop_when(message):
                            return
        finally:
            self.opened.set()
            self.done.set()

    def wait(self) -> list[Received]:
        assert self.done.wait(90), f"the stream never ended: {self.messages[-3:]}"
        return self.messages


def ready(image_id: str) -> Any:
    return lambda m: m.data.get("id") == image_id and m.data.get("status") in ("ready", "failed")


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Stack]]:
    """Two `make run` stacks (api + worker each) sharing one data folder and one Redis."""
    folder = tmp_path_factory.mktemp("events")
    env = {"PLEXZOOM_REDIS_URL": require_redis(_DB), "PLEXZOOM_EVENTS_HISTORY": str(HISTORY)}
    first = Stack(folder / "data", env, folder / "a.log")
    second = Stack(folder / "data", env, folder / "b.log")
    yield first, second
    first.stop()
    second.stop()


def upload(stack: Stack, name: str) -> str:
    data = quadrant_image(900, 600).write_to_buffer(".png")
    answer = httpx.post(f"{stack.url}/v1/images", files={"file": (name, data)}, timeout=60)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def test_two_api_processes_stream_one_conversion_in_order(stacks: tuple[Stack, Stack]) -> None:
    first, second = stacks
    readers = [Reader(f"{s.url}/v1/events").start() for s in stacks]
    image_id = upload(first, "a.png")
    for reader in readers:
        reader.stop_when = ready(image_id)
    got = [[m for m in r.wait() if m.data.get("id") == image_id] for r in readers]
    assert [m.id for m in got[0]] == [m.id for m in got[1]], "the api processes disagree"
    events = got[0]
    assert events[0].kind == "created" and events[0].data["status"] == "uploading"
    assert events[-1].data["status"] == "ready" and events[-1].data["progress"] == 1.0
    ranks = [ORDER.index(m.data["status"]) for m in events]
    assert ranks == sorted(ranks), [m.data["status"] for m in events]
    progress = [m.data["progress"] for m in events if m.data["status"] == "processing"]
    assert progress == sorted(progress)

    # Resume on the other process after the second event: the rest, exactly.
    after = events[1].id
    assert after is not None
    resumed = Reader(f"{second.url}/v1/events", {"Last-Event-ID": after}, ready(image_id))
    tail = [m for m in resumed.start().wait() if m.data.get("id") == image_id]
    assert [m.id for m in tail] == [m.id for m in events[2:]]

    # A filtered stream first tells the image's state now.
    current = Reader(f"{first.url}/v1/events?image={image_id}", stop_when=lambda m: True)
    (state,) = current.start().wait()
    assert (state.kind, state.data["status"], state.data["id"]) == ("image", "ready", image_id)

    # Deleted: told on both.
    for reader in readers:
        reader.messages.clear()
    gone = [
        Reader(f"{s.url}/v1/events?image={image_id}", stop_when=lambda m: m.kind == "deleted")
        for s in stacks
    ]
    for reader in gone:
        reader.start()
    assert httpx.delete(f"{second.url}/v1/images/{image_id}").status_code == 204
    for reader in gone:
        assert reader.wait()[-1].kind == "deleted"


def test_a_resume_after_the_history_was_trimmed_is_told_to_reload(
    stacks: tuple[Stack, Stack],
) -> None:
    first, _ = stacks
    log = EventLog(redis.Redis.from_url(require_redis(_DB)), STREAM, history=HISTORY)
    old = log.publish("image", {"id": "0" * 26, "status": "ready"})
    for n in range(1000):  # more than the history keeps
        log.publish("image", {"id": "1" * 26, "n": n})
    reader = Reader(f"{first.url}/v1/events", {"Last-Event-ID": old}, lambda m: True)
    (message,) = reader.start().wait()
    assert message.kind == "reset" and "reload" in message.data["reason"]
    fresh = Reader(f"{first.url}/v1/events", {"Last-Event-ID": log.latest_id()}, lambda m: True)
    fresh.start()
    log.publish("image", {"id": "2" * 26, "status": "queued"})
    (message,) = fresh.wait()
    assert message.kind == "image" and message.data["id"] == "2" * 26


def test_events_need_a_key_when_keys_are_set(tmp_path: Path) -> None:
    env = {"PLEXZOOM_REDIS_URL": require_redis(_DB), "PLEXZOOM_API_KEYS": "events-key-1234567890"}
    stack = Stack(tmp_path / "data", env, tmp_path / "keys.log")
    try:
        url = f"{stack.url}/v1/events"
        for headers in ({}, {"Authorization": "Bearer wrong-key-1234567890"}):
            refused = Reader(url, headers).start()
            refused.wait()
            assert refused.status == 401
        keyed = Reader(url, {"Authorization": "Bearer events-key-1234567890"}, lambda m: True)
        keyed.start()
        assert keyed.status == 200
        created = httpx.post(
            f"{stack.url}/v1/images",
            files={"file": ("k.png", quadrant_image(300, 200).write_to_buffer(".png"))},
            headers={"Authorization": "Bearer events-key-1234567890"},
            timeout=60,
        )
        assert created.status_code == 202
        assert keyed.wait()[0].kind == "created"
    finally:
        stack.stop()
