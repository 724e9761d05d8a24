"""Waiting for images on the event stream: current state first, resume with Last-Event-ID,
reset, deletion, timeout, and polling only where the server has no events."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plexzoom.client import Client, NotFound, WaitTimeout
from plexzoom.client.events import ServerEvent, Waiter, parse_sse

A, B = "a" * 26, "b" * 26


def sse(kind: str, event_id: str, **data: Any) -> bytes:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n".encode()


class Server:
    """/v1/images/{id} answers ``statuses``; /v1/events plays ``streams`` one per connection."""

    def __init__(self, statuses: dict[str, list[str]], streams: list[Iterator[bytes]]) -> None:
        self.statuses, self.streams = statuses, streams
        self.connections: list[httpx.Request] = []
        self.reads: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            self.connections.append(request)
            if not self.streams:
                return httpx.Response(503, json={"detail": "Events need Redis."})
            return httpx.Response(200, content=self.streams.pop(0))
        image_id = request.url.path.rsplit("/", 1)[1]
        self.reads.append(image_id)
        queue = self.statuses[image_id]
        status = queue.pop(0) if len(queue) > 1 else queue[0]
        return httpx.Response(200, json={"id": image_id, "status": status, "progress": 0.5})

    def waiter(self, timeout_s: float | None = None) -> Waiter:
        client = Client("http://api.test", transport=httpx.MockTransport(self.handle))
        return Waiter(client, timeout_s, sleep=lambda s: None)


def dropped(*events: bytes) -> Iterator[bytes]:
    """A stream that sends ``events`` and then breaks off."""
    yield from events
    raise httpx.ReadError("connection reset")


def test_the_parser_reads_events_comments_and_multiline_data() -> None:
    text = ': heartbeat\n\nid: 1-0\nevent: image\ndata: {"id":\ndata: "x"}\n\nevent: reset\n\n'
    assert list(parse_sse(text.splitlines())) == [
        ServerEvent("comment"),
        ServerEvent("image", "1-0", {"id": "x"}),
        ServerEvent("reset"),
    ]


def test_images_already_finished_return_without_a_stream() -> None:
    server = Server({A: ["ready"], B: ["failed"]}, [])
    final = server.waiter().run([A, B])
    assert {i: image.status for i, image in final.items()} == {A: "ready", B: "failed"}
    assert server.connections == []


def test_a_dropped_stream_resumes_after_the_last_event_seen() -> None:
    first = dropped(sse("image", "5-0", id=A, status="processing", progress=0.3))
    second = iter([sse("image", "6-0", id=A, status="ready", progress=1.0)])
    server = Server({A: ["queued", "ready"]}, [first, second])
    assert server.waiter().run([A])[A].status == "ready"
    one, two = server.connections
    assert "last-event-id" not in one.headers and two.headers["last-event-id"] == "5-0"
    assert one.url.params.get_list("image") == [A]


def test_a_reset_reloads_the_status_and_starts_a_new_stream() -> None:
    first = iter([sse("image", "5-0", id=A, status="processing"), b"event: reset\ndata: {}\n\n"])
    server = Server({A: ["queued", "ready"]}, [first])
    assert server.waiter().run([A])[A].status == "ready"
    assert len(server.connections) == 1 and server.reads == [A, A]


def test_only_unfinished_images_are_followed() -> None:
    stream = iter([sse("image", "7-0", id=B, status="ready")])
    server = Server({A: ["ready"], B: ["processing", "ready"]}, [stream])
    assert server.waiter().run([A, B])[B].status == "ready"
    assert server.connections[0].url.params.get_list("image") == [B]


def test_a_deleted_image_ends_the_wait() -> None:
    server = Server({A: ["processing"]}, [iter([sse("deleted", "8-0", id=A)])])
    with pytest.raises(NotFound, match="deleted while waiting"):
        server.waiter().run([A])


def test_the_wait_runs_out() -> None:
    def heartbeats() -> Iterator[bytes]:
        while True:
            yield b": heartbeat\n\n"

    server = Server({A: ["processing"]}, [heartbeats()])
    with pytest.raises(WaitTimeout, match=A):
        server.waiter(timeout_s=0.2).run([A])


def test_a_server_without_events_is_polled() -> None:
    server = Server({A: ["queued", "processing", "processing", "ready"]}, [])
    assert server.waiter().run([A])[A].status == "ready"
    assert len(server.connections) == 1 and server.reads == [A] * 4
