"""Waiting for conversions by following the server's event stream (Server-Sent Events).

The current status is read first, so an image that is already ready or failed returns at once;
then ``/v1/events?image=...`` is followed (it sends each image's current state first, so nothing
falls between). A dropped stream is resumed with ``Last-Event-ID``; ``event: reset`` (events
were trimmed) reloads the status and starts a new stream. Only a server without events (503)
is polled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plexzoom.client.errors import NotFound, ServerUnreachable, WaitTimeout
from plexzoom.client.models import Image

if TYPE_CHECKING:
    from plexzoom.client.client import Client

STREAM_IDS = 100  # the server follows at most 100 images per stream
SILENCE_S = 45.0  # heartbeats come every 15 s: this long without a line is a dropped stream
RECONNECTS = 8  # failed reconnections in a row before the server counts as unreachable
POLL_S = 2.0


@dataclass(frozen=True)
class ServerEvent:
    """One message of the stream (``kind`` "comment" for a heartbeat)."""

    kind: str
    id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Messages of a text/event-stream, line by line (WHATWG Server-Sent Events)."""
    kind: str = ""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            if data or kind:
                yield ServerEvent(kind or "message", event_id, json.loads("\n".join(data) or "{}"))
            kind, event_id, data = "", None, []
        elif line.startswith(":"):
            yield ServerEvent("comment")
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event_id = value


class Waiter:
    """Waits for some images to end ready or failed."""

    def __init__(
        self,
        client: Client,
        timeout_s: float | None,
        on_change: Callable[[Image], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.on_change, self.sleep = client, on_change, sleep
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.last_id: str | None = None  # the last event seen: a new stream resumes after it

    def run(self, image_ids: Iterable[str]) -> dict[str, Image]:
        """The final status of each image."""
        ids = list(dict.fromkeys(image_ids))
        final: dict[str, Image] = {}
        for start in range(0, len(ids), STREAM_IDS):
            final |= self._batch(ids[start : start + STREAM_IDS])
        return {i: final[i] for i in ids}

    def _batch(self, ids: list[str]) -> dict[str, Image]:
        images = {i: self._changed(self.client.status(i)) for i in ids}
        self.last_id, failures = None, 0
        while not all(image.finished for image in images.values()):
            self._check_time(images)
            try:
                self._follow(images)
                failures = 0
            except ServerUnreachable as exc:
                if exc.status == 503:
                    return self._poll(images)
                failures += 1
                if failures >= RECONNECTS:
                    raise
                self.sleep(min(15.0, 0.5 * 2 ** (failures - 1)))
        return images

    def _follow(self, images: dict[str, Image]) -> None:
        """Read one stream until every image finished or the stream ends."""
        waiting = [i for i, image in images.items() if not image.finished]
        with self.client.event_stream(waiting, self.last_id, self._read_timeout()) as response:
            for event in parse_sse(response.iter_lines()):
                self._check_time(images)
                if event.kind == "reset":
                    self.last_id = None
                    images.update({i: self._changed(self.client.status(i)) for i in waiting})
                    return
                self.last_id = event.id or self.last_id
                image_id = str(event.data.get("id", ""))
                if image_id not in images:
                    continue
                if event.kind == "deleted":
                    raise NotFound(f"Image {image_id} was deleted while waiting for it.", 404)
                if event.kind in ("created", "image"):
                    self._update(images, Image.from_json(event.data))
                if all(image.finished for image in images.values()):
                    return

    def _update(self, images: dict[str, Image], seen: Image) -> None:
        """Take an event's state; a finished image's full status (its links) is read once."""
        if seen.finished:
            seen = self.client.status(seen.id)
        images[seen.id] = self._changed(seen)

    def _changed(self, image: Image) -> Image:
        if self.on_change is not None:
            self.on_change(image)
        return image

    def _poll(self, images: dict[str, Image]) -> dict[str, Image]:
        """Without an event stream (a server without Redis): read each status every 2 s."""
        while True:
            for i, image in images.items():
                if not image.finished:
                    images[i] = self._changed(self.client.status(i))
            if all(image.finished for image in images.values()):
                return images
            self._check_time(images)
            self.sleep(POLL_S)

    def _read_timeout(self) -> float:
        if self.deadline is None:
            return SILENCE_S
        return max(0.1, min(SILENCE_S, self.deadline - time.monotonic()))

    def _check_time(self, images: dict[str, Image]) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            left = sorted(i for i, image in images.items() if not image.finished)
            raise WaitTimeout(f"Still converting when the wait ran out: {', '.join(left)}.")
